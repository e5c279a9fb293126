"""The data path against the usual one: prepared uint8 shards held in memory against torchvision
`ImageFolder` + PIL decode + resize over JPEG files, on the same images at the same resolution
and batch size; and how long a training step waits for its batch.

The JPEGs are real: 96 px tiles cut from the sample photos (the installed packages' images),
written once to a temporary folder, so the decode path does what it does on ImageNet.
"""

import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.rows import Row
from data import sample
from data.shards import SplitArrays, read_split, write_prepared
from trainers.steps import to_unit

SOURCE_PX = 96  # JPEG side: larger than the training resolution, as a real data set's are
RESOLUTION = 32
BATCH = 64


def write_jpegs(folder: Path, count: int) -> list[np.ndarray]:
    """`count` JPEG tiles in ImageFolder layout (one class folder per photo); their pixels."""
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


def resized(tiles: list[np.ndarray]) -> np.ndarray:
    """The same tiles resized as ImageFolder's transform does, prepared once (shorter side,
    centre crop: square tiles need no crop)."""
    return np.stack(
        [
            np.asarray(Image.fromarray(t).resize((RESOLUTION, RESOLUTION), Image.BILINEAR))
            for t in tiles
        ]
    )


def data_rows(count: int = 3000) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        jpegs, shards = Path(tmp) / "jpeg", Path(tmp) / "shards"
        jpegs.mkdir()
        tiles = write_jpegs(jpegs, count)
        arrays = SplitArrays(resized(tiles), np.zeros(count, dtype=np.int64), [""] * count)
        write_prepared(shards, {"train": arrays}, {"dataset": "bench", "resolution": RESOLUTION})
        folder_rate, folder_seen = imagefolder_images_per_s(jpegs)
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
