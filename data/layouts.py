"""Where each on-disk variant keeps its images: listed from folder and file names, nothing decoded.

A layout turns a root folder into a `Listing`: per official split (train / val / test as the
variant ships them), the sorted relative paths of its image files (or of its array batch
files) and their class ids. Class ids are the positions of the class folders' names in sorted
order (ImageNet's wnids), and -1 where the layout has no label for a file.
"""

import csv
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# torchvision's ImageFolder suffixes; the case varies in the wild (.JPEG in ImageNet)
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"}
)
WNID = re.compile(r"n\d{8}")
BATCH_FILE = re.compile(r"(train_data_batch_\d+|val_data)(\.npz)?")


class LayoutError(FileNotFoundError):
    """The root is missing, empty, or not in the layout the variant expects."""


@dataclass(frozen=True)
class SourceSplit:
    paths: tuple[str, ...]  # relative to the listing's root, sorted
    class_ids: tuple[int, ...] = ()  # per path; empty for array batches (labels are inside)


@dataclass(frozen=True)
class Listing:
    root: Path
    decoder: str  # "files" (one image per file) or "arrays" (pickled / npz batches)
    splits: dict[str, SourceSplit]  # official split name -> its files
    classes: tuple[str, ...] = ()
    notes: dict = field(default_factory=dict)  # what the manifest should say about the layout

    @property
    def checksum(self) -> str:
        """A digest of the file list (names, not contents): a changed tree prepares again."""
        digest = hashlib.sha256(self.decoder.encode())
        for name in sorted(self.splits):
            digest.update(f"\0{name}\0".encode())
            digest.update("\n".join(self.splits[name].paths).encode())
        return digest.hexdigest()[:16]


def images_in(folder: Path) -> list[Path]:
    """Image files by suffix; scandir's entry types spare a stat per file (1.28M in ImageNet)."""
    if not folder.is_dir():
        return []
    with os.scandir(folder) as entries:
        return sorted(
            folder / e.name
            for e in entries
            if os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES and e.is_file()
        )


def subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def class_tree(root: Path, folder: Path, classes: list[str], inner: str = "") -> SourceSplit:
    """Images in `folder/<class>/<inner>/`, labelled by the class's position in `classes`."""
    index = {name: i for i, name in enumerate(classes)}
    paths, ids = [], []
    for class_folder in subfolders(folder):
        for image in images_in(class_folder / inner if inner else class_folder):
            paths.append(image.relative_to(root).as_posix())
            ids.append(index.get(class_folder.name, -1))
    return SourceSplit(tuple(paths), tuple(ids))


def flat(root: Path, folder: Path, labels: dict[str, int] | None = None) -> SourceSplit:
    files = images_in(folder)
    labels = labels or {}
    return SourceSplit(
        tuple(p.relative_to(root).as_posix() for p in files),
        tuple(labels.get(p.name, -1) for p in files),
    )


def require(condition: bool, reason: str) -> None:
    if not condition:
        raise LayoutError(reason)


def scan_imagefolder(root: Path) -> Listing:
    classes = [p.name for p in subfolders(root / "train")]
    require(bool(classes), "no class folders in train/")
    splits = {"train": class_tree(root, root / "train", classes)}
    require(bool(splits["train"].paths), "no images in train/<class>/")
    splits["val"] = class_tree(root, root / "val", classes)
    require(bool(splits["val"].paths), "no images in val/<class>/")
    if (root / "test").is_dir():
        test = class_tree(root, root / "test", classes)
        splits["test"] = test if test.paths else flat(root, root / "test")
    return Listing(root, "files", splits, tuple(classes))


def kaggle_val_labels(root: Path, classes: list[str]) -> dict[str, int]:
    """Flat val labels from Kaggle's LOC_val_solution.csv where it sits beside the tree."""
    for csv_path in (root / "LOC_val_solution.csv", root.parents[2] / "LOC_val_solution.csv"):
        if csv_path.is_file():
            index = {name: i for i, name in enumerate(classes)}
            with csv_path.open() as handle:
                rows = csv.DictReader(handle)
                return {
                    f"{row['ImageId']}.JPEG": index.get(row["PredictionString"].split()[0], -1)
                    for row in rows
                }
    return {}


def scan_imagenet(root: Path) -> Listing:
    kaggle = root / "ILSVRC" / "Data" / "CLS-LOC"
    if kaggle.is_dir():
        root = kaggle
    classes = [p.name for p in subfolders(root / "train") if WNID.fullmatch(p.name)]
    require(bool(classes), "no wnid class folders (n01440764, ...) in train/")
    splits = {"train": class_tree(root, root / "train", classes)}
    require(bool(splits["train"].paths), "no images in train/<wnid>/")
    val_folders = [p for p in subfolders(root / "val") if WNID.fullmatch(p.name)]
    if val_folders:
        splits["val"], notes = class_tree(root, root / "val", classes), {"val": "class folders"}
    else:
        labels = kaggle_val_labels(root, classes) if len(root.parents) > 2 else {}
        splits["val"] = flat(root, root / "val", labels)
        notes = {"val": "flat" + (", labels from LOC_val_solution.csv" if labels else "")}
    require(bool(splits["val"].paths), "no images in val/ (flat or in wnid folders)")
    if images_in(root / "test"):
        splits["test"] = flat(root, root / "test")
    return Listing(root, "files", splits, tuple(classes), notes)


def scan_tiny_imagenet(root: Path) -> Listing:
    classes = [p.name for p in subfolders(root / "train") if (p / "images").is_dir()]
    require(bool(classes), "no train/<wnid>/images/ folders")
    splits = {"train": class_tree(root, root / "train", classes, inner="images")}
    annotations = root / "val" / "val_annotations.txt"
    require(annotations.is_file(), "no val/val_annotations.txt")
    index = {name: i for i, name in enumerate(classes)}
    labels = {}
    for line in annotations.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            labels[parts[0]] = index.get(parts[1], -1)
    splits["val"] = flat(root, root / "val" / "images", labels)
    require(bool(splits["val"].paths), "no images in val/images/")
    if images_in(root / "test" / "images"):
        splits["test"] = flat(root, root / "test" / "images")
    return Listing(root, "files", splits, tuple(classes))


def batch_number(path: Path) -> int:
    digits = re.findall(r"\d+", path.name)
    return int(digits[-1]) if digits else 0


def scan_downsampled(root: Path) -> Listing:
    """Chrabaszcz et al.'s batches, at the root or one folder down (Imagenet64_train/, ...)."""
    files = [
        p for p in [*root.iterdir(), *(q for d in subfolders(root) for q in d.iterdir())]
        if p.is_file() and BATCH_FILE.fullmatch(p.name)
    ]  # fmt: skip
    train = sorted((p for p in files if p.name.startswith("train")), key=batch_number)
    val = [p for p in files if p.name.startswith("val")]
    require(bool(train), "no train_data_batch_<n> files (pickle or .npz)")
    require(bool(val), "no val_data file (pickle or .npz)")
    relative = lambda paths: tuple(p.relative_to(root).as_posix() for p in paths)
    splits = {"train": SourceSplit(relative(train)), "val": SourceSplit(relative(val[:1]))}
    return Listing(root, "arrays", splits)


@dataclass(frozen=True)
class Layout:
    """One on-disk variant: how to list it, what it looks like, and its default protocol."""

    scan: Callable[[Path], Listing]
    expects: str  # the layout in words, for errors
    protocol: str  # "holdout" (the group's) or "official"; see data.splits
    side: int = 0  # arrays only: the images' native side, checked when decoded


IMAGEFOLDER_TREE = "train/<class>/*.jpg and val/<class>/*.jpg (test/ optional)"
LAYOUTS: dict[str, Layout] = {
    "imagenet": Layout(
        scan_imagenet,
        "ILSVRC2012: train/<wnid>/*.JPEG, val/ flat or in <wnid>/ folders, test/ flat (optional)",
        "holdout",
    ),
    "imagenette": Layout(scan_imagefolder, IMAGEFOLDER_TREE, "official"),
    "imagefolder": Layout(scan_imagefolder, IMAGEFOLDER_TREE, "official"),
    "tiny-imagenet": Layout(
        scan_tiny_imagenet,
        "train/<wnid>/images/*.JPEG, val/images/ with val/val_annotations.txt, test/images/",
        "official",
    ),
    "imagenet32": Layout(
        scan_downsampled,
        "train_data_batch_1..10 and val_data (pickle or .npz), 32x32",
        "holdout",
        32,
    ),
    "imagenet64": Layout(
        scan_downsampled,
        "train_data_batch_1..10 and val_data (pickle or .npz), 64x64",
        "holdout",
        64,
    ),
}


def matching(root: Path) -> list[str]:
    """The variants whose layout this root has (for hints in errors)."""
    found = []
    for name, layout in LAYOUTS.items():
        try:
            layout.scan(root)
            found.append(name)
        except (LayoutError, OSError):
            continue
    return found


def check_root(name: str, root: str | Path) -> Path:
    """The cheap checks, made before Ray starts: the root is given, exists and is not empty."""
    layout = LAYOUTS[name]
    folder = Path(root).expanduser()
    if not str(root):
        raise LayoutError(
            f"data.dataset {name} needs data.root (ROOT=<path>): a folder with {layout.expects}"
        )
    if not folder.is_dir():
        raise LayoutError(f"no folder {folder} (ROOT for {name}: {layout.expects})")
    if not any(folder.iterdir()):
        raise LayoutError(f"{folder} is empty; {name} expects {layout.expects}")
    return folder


def scan(name: str, root: str | Path) -> Listing:
    """List variant `name` under `root`, or say what was expected and what the root looks like."""
    layout, folder = LAYOUTS[name], check_root(name, root)
    try:
        return layout.scan(folder.resolve())
    except LayoutError as error:
        others = [other for other in matching(folder.resolve()) if other != name]
        hint = f"; it looks like {' or '.join(others)} (DATASET=...)" if others else ""
        raise LayoutError(
            f"{folder} does not have the {name} layout: {error}. {name} expects {layout.expects}{hint}"
        ) from None
