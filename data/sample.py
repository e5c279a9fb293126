"""`sample`: a small real-photo set built from images that installed packages ship.

Every photo in scikit-image's `skimage/data` and scikit-learn's sample images is scaled by
2/3 (Lanczos) and cut into a grid of non-overlapping resolution x resolution tiles; each tile
goes to train / val / test (80 / 10 / 10) by a permutation with a fixed seed. Tiles never share
a pixel, so the splits cannot overlap, and no download is ever needed. The 2/3 scale puts more
of an object in each 32 px tile and keeps the set at ~3,000 tiles, which is what lets the
default 7-trial sweep finish in minutes on 2 CPU cores.
"""

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image

from data.layouts import LayoutError
from data.shards import SplitArrays

# Real photographs only: synthetic test patterns (chessboard, logo, phantom, ...) and the right
# half of the motorcycle stereo pair (near-duplicate of the left) are left out on purpose.
PHOTOS = {
    "skimage": [
        "astronaut.png",
        "brick.png",
        "camera.png",
        "cell.png",
        "chelsea.png",
        "clock_motion.png",
        "coffee.png",
        "coins.png",
        "grass.png",
        "gravel.png",
        "hubble_deep_field.jpg",
        "ihc.png",
        "microaneurysms.png",
        "moon.png",
        "motorcycle_left.png",
        "page.png",
        "retina.jpg",
        "rocket.jpg",
        "text.png",
    ],
    "sklearn": ["china.jpg", "flower.jpg"],
}
PACKAGE_DIRS = {"skimage": "data", "sklearn": "datasets/images"}
SPLIT_SHARES = {"train": 0.8, "val": 0.1, "test": 0.1}
SPLIT_SEED = 0
PHOTO_SCALE = 2 / 3


def photo_paths() -> list[Path]:
    """The photos found in the installed packages, in a fixed order."""
    paths = []
    for package, names in PHOTOS.items():
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            continue
        folder = Path(spec.origin).parent / PACKAGE_DIRS[package]
        paths += [folder / name for name in names if (folder / name).is_file()]
    if not paths:
        raise LayoutError("no sample photos found: install scikit-image or scikit-learn")
    return paths


def source_checksum(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def tiles(path: Path, resolution: int) -> tuple[np.ndarray, list[str]]:
    """Non-overlapping RGB tiles (T, res, res, 3) of the scaled photo, 'name@y,x' labels."""
    photo = Image.open(path).convert("RGB")
    size = (round(photo.width * PHOTO_SCALE), round(photo.height * PHOTO_SCALE))
    image = np.asarray(photo.resize(size, Image.Resampling.LANCZOS))
    rows, cols = image.shape[0] // resolution, image.shape[1] // resolution
    cropped = image[: rows * resolution, : cols * resolution]
    grid = cropped.reshape(rows, resolution, cols, resolution, 3).swapaxes(1, 2)
    labels = [
        f"{path.name}@{r * resolution},{c * resolution}" for r in range(rows) for c in range(cols)
    ]
    return grid.reshape(rows * cols, resolution, resolution, 3), labels


def split_assignment(count: int) -> np.ndarray:
    """Split name per tile, from a fixed-seed permutation: 80 / 10 / 10."""
    order = np.random.default_rng(SPLIT_SEED).permutation(count)
    names = np.empty(count, dtype=object)
    bounds = np.cumsum([0, *[round(share * count) for share in SPLIT_SHARES.values()]])
    bounds[-1] = count
    for name, start, stop in zip(SPLIT_SHARES, bounds[:-1], bounds[1:], strict=True):
        names[order[start:stop]] = name
    return names


def build(resolution: int) -> tuple[dict[str, SplitArrays], dict]:
    """All sample tiles, split, plus what the manifest should say about their source."""
    paths = photo_paths()
    images, class_ids, labels = [], [], []
    for class_id, path in enumerate(paths):
        photo_tiles, photo_labels = tiles(path, resolution)
        images.append(photo_tiles)
        class_ids += [class_id] * len(photo_tiles)
        labels += photo_labels
    images, class_ids = np.concatenate(images), np.asarray(class_ids)
    assignment = split_assignment(len(images))
    splits = {}
    for name in SPLIT_SHARES:
        chosen = np.flatnonzero(assignment == name)
        splits[name] = SplitArrays(images[chosen], class_ids[chosen], [labels[i] for i in chosen])
    source = {
        "source": "installed packages: " + ", ".join(PHOTOS),
        "photos": [p.name for p in paths],
        "checksum": source_checksum(paths),
        "skipped": [],
    }
    return splits, source
