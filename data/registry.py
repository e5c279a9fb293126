"""The data-set registry and the prepare-once cache in front of it.

Image variants: `sample`, built in memory from the installed packages' photos, and the on-disk
layouts of `data.layouts` (ImageNet and friends), decoded once by `data.prepare`. Text variants
(`data.text`): torch's own Python sources, or a folder of the user's files, cut into windows.
"""

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from data import sample, text
from data.config import DataConfig
from data.decode import batch_rows
from data.layouts import LAYOUTS, scan
from data.prepare import prepare_listing, reusable
from data.shards import SplitArrays, example_shape, read_manifest, write_prepared

Builder = Callable[[DataConfig], tuple[dict[str, SplitArrays], dict]]

BUILT: dict[str, Builder] = {
    "sample": lambda cfg: sample.build(cfg.resolution),
}
# Text variants: where their files are (a root folder and its files, in path order).
TEXTS: dict[str, Callable[[DataConfig], tuple[Path, list[Path]]]] = {
    "pysource": lambda cfg: text.python_sources(),
    "text": lambda cfg: text.folder_files(cfg.root),
}
DATASETS: tuple[str, ...] = (*BUILT, *LAYOUTS, *TEXTS)
EMBEDDED = {"sample": "sample photos", "pysource": "torch's Python sources"}  # no ROOT= needed


class UnknownDataset(ValueError):
    pass


def check_dataset(name: str) -> None:
    if name not in DATASETS:
        raise UnknownDataset(f"unknown dataset {name!r}; valid: {', '.join(sorted(DATASETS))}")


def kind(dataset: str) -> str:
    """What a variant's examples are: "image" or "text" (which model family can read them)."""
    return "text" if dataset in TEXTS else "image"


def layout(cfg: DataConfig) -> dict:
    """The manifest keys that say how a stored example reads back (`data.shards.examples`)."""
    if kind(cfg.dataset) == "text":
        return {"kind": "text", "context": cfg.context}
    return {"resolution": cfg.resolution}


def example_bytes(cfg: DataConfig) -> int:
    """Bytes of one stored example: an image or a text window."""
    return int(np.prod(example_shape(layout(cfg))))


def protocol(cfg: DataConfig) -> str:
    """The split protocol in force: the config's, else the variant's default."""
    return cfg.protocol or (LAYOUTS[cfg.dataset].protocol if cfg.dataset in LAYOUTS else "")


def source_settings(cfg: DataConfig) -> dict:
    """Everything that decides a prepared folder's contents, besides the files themselves."""
    return {
        "dataset": cfg.dataset,
        "resolution": cfg.resolution,
        "root": str(Path(cfg.root).expanduser().resolve()),
        "protocol": protocol(cfg),
        "split_seed": cfg.split_seed,
        "resize": cfg.resize,
    }


def text_settings(cfg: DataConfig) -> dict:
    root = str(Path(cfg.root).expanduser().resolve()) if cfg.dataset == "text" else ""
    return {"dataset": cfg.dataset, "context": cfg.context, "root": root, "seed": cfg.split_seed}


def settings_digest(settings: dict) -> str:
    """8 hex digits that tell prepared folders of other settings apart."""
    return hashlib.sha256(repr(sorted(settings.items())).encode()).hexdigest()[:8]


def prepared_folder(cfg: DataConfig, data_dir: Path) -> Path:
    if kind(cfg.dataset) == "text":  # one folder per corpus, window and split seed
        digest = settings_digest(text_settings(cfg))
        return Path(data_dir) / f"{cfg.dataset}-{cfg.context}tok-{digest}"
    name = f"{cfg.dataset}-{cfg.resolution}px"
    if cfg.dataset in LAYOUTS:  # one folder per source root and split protocol
        name += "-" + settings_digest(source_settings(cfg))
    return Path(data_dir) / name


def is_prepared(cfg: DataConfig, data_dir: Path) -> bool:
    """Whether `prepare` would reuse the shards (for a layout: lists the source files)."""
    manifest = read_manifest(prepared_folder(cfg, data_dir))
    if kind(cfg.dataset) == "text":
        return manifest is not None and manifest.get("listing") == text_listing(cfg)
    if cfg.dataset not in LAYOUTS:
        return manifest is not None
    return reusable(manifest, scan(cfg.dataset, cfg.root))  # scan raises for a wrong layout


def images_to_load(cfg: DataConfig, data_dir: Path, splits: tuple[str, ...] = ()) -> int:
    """How many images a trial loads (all splits or `splits`, `data.limit` each): the prepared
    counts, or, before a layout is prepared, every listed image (an upper bound: the official
    split, read from the file listing and the batch files' headers; nothing is decoded)."""
    manifest = read_manifest(prepared_folder(cfg, data_dir))
    if manifest is not None:
        entries = manifest["splits"].items()
        counts = [e["count"] for name, e in entries if not splits or name in splits]
    elif kind(cfg.dataset) == "text":  # every byte in windows: an upper bound
        _, files = TEXTS[cfg.dataset](cfg)
        total = sum(path.stat().st_size for path in files) // (cfg.context + 1)
        return min(total, cfg.limit * (len(splits) or 3)) if cfg.limit else total
    elif cfg.dataset in LAYOUTS:
        listing, side = scan(cfg.dataset, cfg.root), LAYOUTS[cfg.dataset].side
        counts = [
            sum(batch_rows(listing.root / path, side) for path in split.paths)
            if side
            else len(split.paths)  # one file per image
            for name, split in listing.splits.items()
            if not splits or name in splits
        ]
    else:  # `sample`: a few MB
        return 0
    return sum(min(count, cfg.limit) if cfg.limit else count for count in counts)


def identity(cfg: DataConfig, data_dir: Path) -> dict[str, str]:
    """The prepared data a run trained on, as MLflow's dataset input names it: runs on other
    data are told apart by name and digest (a hash of the manifest: the file list's checksum,
    the resolution, the split and resize settings, the counts), the source says where the
    shards and their originals are."""
    folder = prepared_folder(cfg, data_dir)
    manifest = read_manifest(folder) or {}
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]
    name = folder.name + (f"-limit{cfg.limit}" if cfg.limit else "")
    embedded = EMBEDDED.get(cfg.dataset, "")
    source = {"prepared": str(folder), "root": cfg.root or f"(embedded: {embedded})"}
    return {"name": name, "digest": digest, "source": json.dumps(source)}


def prepare(cfg: DataConfig, data_dir: Path) -> Path:
    """Prepare the variant once; later calls with the same settings and files reuse the shards."""
    check_dataset(cfg.dataset)
    folder = prepared_folder(cfg, data_dir)
    if kind(cfg.dataset) == "text":
        return prepare_text(cfg, folder)
    if cfg.dataset in LAYOUTS:
        listing = scan(cfg.dataset, cfg.root)
        manifest = read_manifest(folder)
        if reusable(manifest, listing):
            return folder
        if manifest is not None:
            why = (
                f"the files under {listing.root} changed since it was prepared"
                if manifest.get("checksum") != listing.checksum
                else f"it was prepared by an older ovat (format {manifest.get('format', 1)})"
            )
            print(f"ovat: {folder}: {why}; preparing again")
        side = LAYOUTS[cfg.dataset].side
        return prepare_listing(listing, folder, source_settings(cfg), side)
    if read_manifest(folder) is not None:
        return folder
    splits, source = BUILT[cfg.dataset](cfg)
    manifest = {"dataset": cfg.dataset, "resolution": cfg.resolution, **source}
    return write_prepared(folder, splits, manifest)


def text_listing(cfg: DataConfig) -> str:
    return text.listing_checksum(TEXTS[cfg.dataset](cfg)[1])


def prepare_text(cfg: DataConfig, folder: Path) -> Path:
    """Byte windows of a text variant, prepared again when its files changed."""
    root, files = TEXTS[cfg.dataset](cfg)
    listing = text.listing_checksum(files)
    manifest = read_manifest(folder)
    if manifest is not None and manifest.get("listing") == listing:
        return folder
    if manifest is not None:
        print(f"ovat: {folder}: the files under {root} changed since it was prepared; again")
    splits, source = text.build(root, files, cfg.context, cfg.split_seed)
    return write_prepared(folder, splits, {"dataset": cfg.dataset, "listing": listing, **source})
