"""The data path against the usual one: prepared uint8 shards held in memory against torchvision
`ImageFolder` + PIL decode + resize over JPEG files, on the same images at the same resolution
and batch size; and how fast `make prepare` decodes, in one process and as Ray tasks.

The JPEGs are real: 96 px tiles cut from the sample photos (the installed packages' images),
written once to a temporary folder, so the decode path does what it does on ImageNet. The
shards are made from those files by the real `imagefolder` preparation.
"""

import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.rows import Row
from data import sample
from data.config import DataConfig
from data.registry import prepare
from data.shards import read_manifest, read_split
from trainers.steps import to_unit

SOURCE_PX = 96  # JPEG side: larger than the training resolution, as a real data set's are
RESOLUTION = 32
BATCH = 64


def write_jpegs(folder: Path, count: int) -> list[np.ndarray]:
    """`count` JPEG tiles in ImageFolder layout (one class folder per photo); their pixels."""
    folder.mkdir(parents=True, exist_ok=True)
    tiles = []
    for path in sample.photo_paths():
        photo_tiles, _ = sample.tiles(path, SOURCE_PX)
        tiles += [(path.stem, tile) for tile in photo_tiles]
    chosen = [tiles[i % len(tiles)] for i in range(count)]
    for index, (stem, tile) in enumerate(chosen):
        (folder / stem).mkdir(exist_ok=True)
        Image.fromarray(tile).save(folder / stem / f"{index:05d}.jpg", quality=90)
    return [tile for _, tile in chosen]


def imagefolder_images_per_s(folder: Path) -> tuple[float, int]:
    """Decode, resize to RESOLUTION and batch every file once, in this process (workers=0)."""
    from torchvision import datasets, transforms

    transform = transforms.Compose(
        [
            transforms.Resize(RESOLUTION),
            transforms.CenterCrop(RESOLUTION),
            transforms.PILToTensor(),
        ]
    )
    dataset = datasets.ImageFolder(str(folder), transform=transform)
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, num_workers=0)
    started, seen = time.perf_counter(), 0
    for images, _ in loader:
        batch = to_unit(images, torch.device("cpu"))
        seen += len(batch)
    return seen / (time.perf_counter() - started), seen


def shard_images_per_s(folder: Path) -> tuple[float, int]:
    """Read the shards into one uint8 tensor, then serve shuffled batches as floats."""
    started = time.perf_counter()
    images = torch.from_numpy(read_split(folder, "train"))
    order = torch.randperm(len(images))
    seen = 0
    for start in range(0, len(images), BATCH):
        batch = to_unit(images[order[start : start + BATCH]], torch.device("cpu"))
        seen += len(batch)
    return seen / (time.perf_counter() - started), seen


def prepared_shards(root: Path, count: int) -> Path:
    """`root/train` holds the benchmark's JPEGs; a few val and test files complete the tree,
    which `make prepare DATASET=imagefolder` then turns into shards at RESOLUTION."""
    write_jpegs(root / "val", 8)
    write_jpegs(root / "test", 8)
    cfg = DataConfig(dataset="imagefolder", root=str(root), resolution=RESOLUTION)
    return prepare(cfg, root.parent / "prepared")


def data_rows(count: int = 3000) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        jpegs = Path(tmp) / "jpeg"
        write_jpegs(jpegs / "train", count)
        shards = prepared_shards(jpegs, count)
        folder_rate, folder_seen = imagefolder_images_per_s(jpegs / "train")
        shard_rate, shard_seen = shard_images_per_s(shards)
    assert folder_seen == shard_seen == count, (folder_seen, shard_seen)
    return [
        Row(
            "data: shard loader / ImageFolder + PIL decode",
            shard_rate / folder_rate,
            20,
            True,
            f"torchvision ImageFolder on {count} JPEGs ({SOURCE_PX} px) resized to "
            f"{RESOLUTION} px, batch {BATCH}, same process",
            {"shard_images_per_s": shard_rate, "imagefolder_images_per_s": folder_rate},
        )
    ]


PREPARE_PX = 64  # ImageNet 64x64, the resolution the README's memory figures use
PHOTO_LONG_SIDE = 500  # ImageNet's photos are about 500 x 375


class PrepareBench:
    """`make prepare` on ImageNet-sized JPEGs (the sample photos, longer side 500 px), timed
    once in this process and once as Ray tasks on the same files."""

    def __init__(self, folder: Path, count: int):
        self.folder, self.count = folder, count
        photos = []
        for path in sample.photo_paths():
            photo = Image.open(path).convert("RGB")
            photo.thumbnail((PHOTO_LONG_SIDE, PHOTO_LONG_SIDE), Image.Resampling.LANCZOS)
            photos.append((path.stem, photo))
        for split, n in (("train", count), ("val", 8), ("test", 8)):
            for i in range(n):
                stem, photo = photos[i % len(photos)]
                (folder / "src" / split / stem).mkdir(parents=True, exist_ok=True)
                photo.save(folder / "src" / split / stem / f"{i:05d}.JPEG", quality=90)

    def images_per_s(self, run: str, px: int = PREPARE_PX) -> tuple[float, str]:
        cfg = DataConfig(dataset="imagefolder", root=str(self.folder / "src"), resolution=px)
        manifest = read_manifest(prepare(cfg, self.folder / run))
        assert manifest["splits"]["train"]["count"] == self.count, manifest["splits"]
        decode = manifest["decode"]
        return manifest["source_images"] / decode["seconds"], decode["engine"]


def prepare_row(bench: PrepareBench, alone: float, cpus: float) -> Row:
    """Run after Ray is up: the same preparation as Ray tasks, against `alone` (in-process).
    Each side is timed after a first pass at 32 px: for Ray it starts the worker processes
    (~2 s each here), in process it pays the decoders' first calls; one-off costs that
    ImageNet's hours of decoding amortise and a second of benchmark would not (a first
    in-process pass ran 8% and 29% slower than the next one here). Ray's run also has the driver
    writing shards while tasks decode, as in the real `make prepare`: the ratio's bound is the
    CPU count plus that overlap, and a value above the CPU count flags a disturbed anchor."""
    bench.images_per_s("warm-up", px=32)
    on_ray, engine = bench.images_per_s("ray")
    assert engine == "ray", engine
    per_core = on_ray / cpus
    return Row(
        "prepare: Ray tasks / one process",
        on_ray / alone,
        0.75 * cpus,
        True,
        f"{bench.count} ImageNet-sized JPEGs (longer side {PHOTO_LONG_SIDE} px) to "
        f"{PREPARE_PX} px, {cpus:g} CPUs; target 75% of linear",
        {
            "ray_images_per_s": on_ray,
            "one_process_images_per_s": alone,
            "imagenet_train_minutes_on_16_cores": 1_281_167 / (per_core * 16) / 60,
        },
    )
