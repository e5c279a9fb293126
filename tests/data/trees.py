"""Small source trees in every layout ovat reads, made of real photo tiles (the sample photos),
with the quirks real ImageNet has: a CMYK JPEG, a grayscale JPEG, a PNG named .JPEG and a
truncated JPEG."""

import pickle
from pathlib import Path

import numpy as np
from PIL import Image

from data import sample

WNIDS = ("n01440764", "n02102040", "n03000684")
QUIRKS = {
    "cmyk.JPEG": "cmyk",
    "gray.JPEG": "gray",
    "png-named.JPEG": "png",
    "truncated.JPEG": "truncated",
}


def tiles(count: int, side: int = 64) -> list[np.ndarray]:
    """`count` distinct photo tiles; every other one cut to side x 3/4 side (not square)."""
    found = []
    for path in sample.photo_paths():
        found += list(sample.tiles(path, side)[0])
        if len(found) >= count:
            break
    assert len(found) >= count, "not enough sample tiles"
    return [t if i % 2 else t[: side * 3 // 4] for i, t in enumerate(found[:count])]


def save(path: Path, pixels: np.ndarray, kind: str = "jpeg") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(pixels)
    if kind == "jpeg":
        image.save(path, "JPEG", quality=92)
    elif kind == "cmyk":
        image.convert("CMYK").save(path, "JPEG", quality=95)
    elif kind == "gray":
        image.convert("L").save(path, "JPEG", quality=95)
    elif kind == "png":
        image.save(path, "PNG")
    elif kind == "truncated":
        image.save(path, "JPEG", quality=92)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        raise ValueError(kind)


def add_quirks(folder: Path, pixels: list[np.ndarray]) -> dict[str, np.ndarray]:
    """The four quirky files in `folder`; returns each one's original RGB pixels by name."""
    originals = {}
    for (name, kind), image in zip(QUIRKS.items(), pixels, strict=False):
        save(folder / name, image, kind)
        originals[name] = image
    return originals


def class_files(folder: Path, classes, per_class: int, photos: list, suffix=".JPEG") -> None:
    for c, name in enumerate(classes):
        for i in range(per_class):
            save(folder / name / f"{name}_{i}{suffix}", photos[(c * per_class + i) % len(photos)])


def imagefolder_tree(root: Path, per_class: int = 20, test: bool = True) -> dict:
    photos = tiles(60)
    classes = ("cat", "dog", "fish")
    class_files(root / "train", classes, per_class, photos, ".jpg")
    class_files(root / "val", classes, 4, photos[::-1], ".jpg")
    if test:
        class_files(root / "test", classes, 3, photos[1::2], ".jpg")
    (root / "train" / "cat" / "notes.txt").write_text("not an image")  # ignored, not skipped
    return add_quirks(root / "train" / "cat", photos[:4])


def imagenet_tree(root: Path, per_class: int = 20, val_flat: bool = True) -> dict:
    photos = tiles(60)
    class_files(root / "train", WNIDS, per_class, photos)
    if val_flat:
        for i in range(12):
            save(root / "val" / f"ILSVRC2012_val_{i + 1:08d}.JPEG", photos[-1 - i])
    else:
        class_files(root / "val", WNIDS, 4, photos[::-1])
    for i in range(5):
        save(root / "test" / f"ILSVRC2012_test_{i + 1:08d}.JPEG", photos[i])
    return add_quirks(root / "train" / WNIDS[0], photos[:4])


def tiny_imagenet_tree(root: Path, per_class: int = 10) -> dict:
    photos = tiles(40)
    for c, wnid in enumerate(WNIDS):
        for i in range(per_class):
            save(root / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", photos[c * per_class + i])
    lines = []
    for i in range(9):
        save(root / "val" / "images" / f"val_{i}.JPEG", photos[-1 - i])
        lines.append(f"val_{i}.JPEG\t{WNIDS[i % 3]}\t0\t0\t10\t10")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    for i in range(6):
        save(root / "test" / "images" / f"test_{i}.JPEG", photos[i])
    (root / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
    return add_quirks(root / "train" / WNIDS[1] / "images", photos[:4])


def downsampled_tree(root: Path, side: int, npz: bool, batches: int = 2, rows: int = 30) -> None:
    """Chrabaszcz et al.'s format: planar (N, 3*side*side) uint8 rows, 1-based labels."""
    root.mkdir(parents=True, exist_ok=True)
    photos = [np.asarray(Image.fromarray(t).resize((side, side))) for t in tiles(rows)]
    data = np.stack([p.transpose(2, 0, 1).reshape(-1) for p in photos])
    labels = [1 + i % 1000 for i in range(rows)]
    names = [f"train_data_batch_{b + 1}" for b in range(batches)] + ["val_data"]
    for name in names:
        batch = {"data": data, "labels": labels}
        if npz:
            np.savez(root / f"{name}.npz", **batch)
        else:
            with (root / name).open("wb") as handle:
                pickle.dump(batch, handle)


BUILDERS = {
    "imagefolder": imagefolder_tree,
    "imagenet": imagenet_tree,
    "tiny-imagenet": tiny_imagenet_tree,
    "imagenet32": lambda root: downsampled_tree(root, 32, npz=False),
    "imagenet64": lambda root: downsampled_tree(root, 64, npz=True),
}
