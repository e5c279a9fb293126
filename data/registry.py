"""The data-set registry and the prepare-once cache in front of it."""

from collections.abc import Callable
from pathlib import Path

from data import sample
from data.config import DataConfig
from data.shards import SplitArrays, read_manifest, write_prepared

Builder = Callable[[DataConfig], tuple[dict[str, SplitArrays], dict]]

DATASETS: dict[str, Builder] = {
    "sample": lambda cfg: sample.build(cfg.resolution),
}
SPLITS = ("train", "val", "test")


class UnknownDataset(ValueError):
    pass


def check_dataset(name: str) -> None:
    if name not in DATASETS:
        raise UnknownDataset(f"unknown dataset {name!r}; valid: {', '.join(sorted(DATASETS))}")


def prepared_folder(cfg: DataConfig, data_dir: Path) -> Path:
    return Path(data_dir) / f"{cfg.dataset}-{cfg.resolution}px"


def prepare(cfg: DataConfig, data_dir: Path) -> Path:
    """Prepare the variant once; later calls with the same settings reuse the shards."""
    check_dataset(cfg.dataset)
    folder = prepared_folder(cfg, data_dir)
    if read_manifest(folder) is not None:
        return folder
    splits, source = DATASETS[cfg.dataset](cfg)
    manifest = {"dataset": cfg.dataset, "resolution": cfg.resolution, **source}
    return write_prepared(folder, splits, manifest)
