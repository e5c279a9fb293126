"""Decoding source images into uint8 RGB arrays at the training resolution; runs in Ray tasks.

Resize protocol, the same as torchvision's `Resize(res)` + `CenterCrop(res)` on PIL images:
the shorter side is scaled to `res` (bilinear, antialiased by PIL; the longer side truncated to
an int), then the centre `res x res` is cut. JPEGs are first decoded at the largest 1/2, 1/4
or 1/8 DCT scale that still covers that size (`Image.draft`), which makes ImageNet several
times faster to prepare at 64 px and changes pixels only slightly.

Real ImageNet has CMYK and grayscale JPEGs and a PNG named .JPEG: PIL reads each by content and
they are converted to RGB. A file that cannot be read in full (truncated, not an image) is
skipped and reported with its reason; it never stops the preparation.
"""

import pickle
import socket
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

from data.layouts import LayoutError
from data.shards import SplitArrays
from data.splits import Splitter


@dataclass
class Decoded:
    """What one task returns: rows per training split, and the files it had to skip."""

    rows: dict[str, SplitArrays] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source path, reason)
    seen: int = 0  # source images looked at (decoded, skipped, or unused by the protocol)


def resized_size(width: int, height: int, res: int) -> tuple[int, int]:
    """(w, h) with the shorter side `res`, as torchvision computes it."""
    if width <= height:
        return res, int(res * height / width)
    return int(res * width / height), res


def crop(image: Image.Image, res: int) -> np.ndarray:
    """Shorter side to `res`, centre crop: (res, res, 3) uint8 RGB."""
    size = resized_size(*image.size, res)
    image.draft(None, size)  # JPEG only; a no-op for other formats
    rgb = image.convert("RGB")
    if rgb.size != size:
        rgb = rgb.resize(size, Image.Resampling.BILINEAR)
    left, top = round((size[0] - res) / 2.0), round((size[1] - res) / 2.0)
    return np.asarray(rgb.crop((left, top, left + res, top + res)))


def squash(image: Image.Image, res: int) -> np.ndarray:
    """The whole image to `res` x `res`, aspect ratio not kept: torchvision's
    `Resize((res, res))` on PIL, exactly (decoded at full scale: no draft)."""
    return np.asarray(image.convert("RGB").resize((res, res), Image.Resampling.BILINEAR))


RESIZERS = {"crop": crop, "squash": squash}  # data.resize -> how a file becomes res x res


def read_image(path: Path, res: int, resize: str = "crop") -> np.ndarray:
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # some libraries flip it globally; we want errors
    with Image.open(path) as image:
        return RESIZERS[resize](image, res)


class Rows:
    """Collects rows per split in arrival order."""

    def __init__(self):
        self.parts: dict[str, tuple[list, list, list, list]] = {}

    def add(self, split: str, images: np.ndarray, class_id: int, index: int, source: str):
        bucket = self.parts.setdefault(split, ([], [], [], []))
        for column, value in zip(bucket, (images, class_id, index, source), strict=True):
            column.append(value)

    def arrays(self, res: int) -> dict[str, SplitArrays]:
        out = {}
        for split, (images, ids, index, sources) in self.parts.items():
            stacked = np.stack(images) if images else np.empty((0, res, res, 3), np.uint8)
            out[split] = SplitArrays(
                stacked, np.asarray(ids, np.int64), list(sources), np.asarray(index, np.int64)
            )
        return out


def decode_files(
    root: str,
    paths: list[str],
    class_ids: list[int],
    first_index: int,
    official: str,
    res: int,
    splitter: Splitter,
    resize: str = "crop",
) -> Decoded:
    """Image files `paths` (relative to root) of one official split, in order."""
    check_visible(root)
    rows, decoded = Rows(), Decoded(seen=len(paths))
    for offset, (relative, class_id) in enumerate(zip(paths, class_ids, strict=True)):
        split = splitter.assign(official, relative, first_index + offset)
        if split is None:
            continue
        try:
            image = read_image(Path(root) / relative, res, resize)
        except Exception as error:  # any unreadable file is skipped, never fatal  # noqa: BLE001
            decoded.skipped.append((relative, f"{type(error).__name__}: {error}"))
            continue
        rows.add(split, image, class_id, first_index + offset, relative)
    decoded.rows = rows.arrays(res)
    return decoded


def check_visible(root: str) -> None:
    """A task on a node that cannot see the source must fail, not skip every file it was given."""
    if not Path(root).is_dir():
        raise LayoutError(
            f"{root} is not visible on node {socket.gethostname()}: mount it at the same path on "
            "every Ray node, or run `make prepare` on the machine that holds it with RAY_ADDRESS "
            "unset (the sweep then reuses the shards under OVAT_DATA_DIR)"
        )


def load_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One downsampled-ImageNet batch: (N, 3*s*s) planar uint8 and 1-based labels."""
    if path.suffix == ".npz":
        with np.load(path) as batch:
            return batch["data"], np.asarray(batch["labels"])
    with path.open("rb") as handle:
        batch = pickle.load(handle)  # the data set's own format; only the user's own files
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    return np.asarray(batch["data"]), np.asarray(batch["labels"])


def batch_rows(path: Path, side: int) -> int:
    """How many images a batch file holds, without reading its pixels: an `.npz`'s array
    header, or for a pickle its size over one image's bytes (an upper bound: the pickle also
    holds the labels)."""
    if path.suffix == ".npz":
        with zipfile.ZipFile(path) as archive, archive.open("data.npy") as member:
            major, _ = np.lib.format.read_magic(member)
            header = np.lib.format.read_array_header_1_0
            if major != 1:
                header = np.lib.format.read_array_header_2_0
            shape, _, _ = header(member)
        return shape[0]
    return path.stat().st_size // (3 * side * side)


def resize_batch(images: np.ndarray, res: int) -> np.ndarray:
    """Square (N, s, s, 3) uint8 to (N, res, res, 3), antialiased bilinear, 4096 at a time."""
    import torch

    out = []
    for start in range(0, len(images), 4096):
        chunk = torch.from_numpy(images[start : start + 4096]).permute(0, 3, 1, 2).float()
        scaled = torch.nn.functional.interpolate(
            chunk, size=(res, res), mode="bilinear", antialias=True, align_corners=False
        )
        out.append(scaled.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy())
    return np.concatenate(out) if out else np.empty((0, res, res, 3), np.uint8)


# A batch row's index in its split: its batch file's number in the split's listing times this,
# plus its row in the file (a batch file holds ~128k rows): unique in the split, known before
# any file is read, so batch files decode in parallel.
ROWS_PER_BATCH_BOUND = 2**32


def decode_arrays(
    root: str, path: str, official: str, res: int, side: int, splitter: Splitter, file_number: int
) -> Decoded:
    """One batch file; its rows are keyed '<file>#<row>' for the split hash."""
    check_visible(root)
    data, labels = load_batch(Path(root) / path)
    found = round((data.shape[1] / 3) ** 0.5)
    if found != side:
        raise LayoutError(
            f"{path} holds {found}x{found} images, not {side}x{side}: DATASET=imagenet{found}"
        )
    images = data.reshape(len(data), 3, side, side).transpose(0, 2, 3, 1)
    keys = [f"{path}#{row}" for row in range(len(data))]
    assigned = np.asarray([splitter.assign(official, key) or "" for key in keys])
    decoded = Decoded(seen=len(data))
    for split in sorted(set(assigned) - {""}):
        chosen = np.flatnonzero(assigned == split)
        picked = np.ascontiguousarray(images[chosen])
        decoded.rows[split] = SplitArrays(
            picked if res == side else resize_batch(picked, res),
            labels[chosen].astype(np.int64) - 1,
            [keys[i] for i in chosen],
            file_number * ROWS_PER_BATCH_BOUND + chosen.astype(np.int64),
        )
    return decoded


DECODERS = {"files": decode_files, "arrays": decode_arrays}
