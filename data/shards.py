"""Prepared data on disk: Parquet shards of uint8 images plus a manifest, written atomically.

A prepared folder is complete exactly when its manifest exists: shards are written into a
temporary sibling folder that is renamed into place only after the manifest is in it.
"""

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

MANIFEST = "manifest.json"


class PreparedDataError(FileNotFoundError):
    """A prepared folder lacks what is asked of it (a split, rows the manifest promises)."""


SHARD_BYTES = 256 * 2**20  # ~256 MiB per shard: large enough to stream, small enough to retry
# Row groups of ~8 MiB: the unit Ray Data reads, splits among workers and shuffles locally (one
# 256 MiB group per shard would hand a worker a quarter GB at a time).
ROW_GROUP_BYTES = 8 * 2**20
# 2: parts, protocol and skipped files in a layout's manifest; 3: a batch layout's row index is
# unique in its split (before, it was the row in its batch file)
FORMAT_VERSION = 3


@dataclass(frozen=True)
class SplitArrays:
    """One split in memory: images (N, H, W, 3) uint8, class ids and source descriptions."""

    images: np.ndarray  # or (N, context + 1) byte windows of text (data.text)
    class_ids: np.ndarray
    sources: list[str]
    index: np.ndarray | None = None  # each row's key, unique in its source split (default 0..N-1)


def _table(split: SplitArrays, start: int, stop: int) -> pa.Table:
    width = int(np.prod(split.images.shape[1:]))  # bytes per example: an image or a window
    flat = split.images[start:stop].reshape(stop - start, width)
    return pa.table(
        {
            "index": pa.array(
                np.arange(start, stop, dtype=np.int64)
                if split.index is None
                else split.index[start:stop].astype(np.int64)
            ),
            "image": pa.FixedSizeBinaryArray.from_buffers(
                pa.binary(width), stop - start, [None, pa.py_buffer(flat.tobytes())]
            ),
            "class_id": pa.array(split.class_ids[start:stop].astype(np.int64)),
            "source": pa.array(split.sources[start:stop], pa.string()),
        }
    )


def write_split(folder: Path, name: str, split: SplitArrays) -> list[str]:
    """`name-00000.parquet`, ...: at most SHARD_BYTES of images each, each written to a
    temporary name and renamed, so a shard that exists is complete."""
    n = len(split.images)
    per_image = max(1, split.images[0].nbytes if n else 1)
    rows = max(1, SHARD_BYTES // per_image)
    group = max(1, ROW_GROUP_BYTES // per_image)
    shards = []
    for shard, start in enumerate(range(0, max(n, 1), rows)):
        filename = f"{name}-{shard:05d}.parquet"
        partial = folder / f".{filename}.partial"
        pq.write_table(_table(split, start, min(start + rows, n)), partial, row_group_size=group)
        os.replace(partial, folder / filename)
        shards.append(filename)
    return shards


def write_prepared(folder: Path, splits: dict[str, SplitArrays], manifest: dict) -> Path:
    """Write all splits and the manifest, then move the folder into place in one rename."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    entries = {
        name: {"count": len(split.images), "shards": write_split(staging, name, split)}
        for name, split in splits.items()
    }
    full = {"format": FORMAT_VERSION, **manifest, "splits": entries}
    (staging / MANIFEST).write_text(json.dumps(full, indent=2, sort_keys=True))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(staging, folder)
    return folder


def read_manifest(folder: Path) -> dict | None:
    path = folder / MANIFEST
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def subset_rows(count: int, limit: int, split: str, seed: int = 0) -> np.ndarray:
    """`limit` of a split's `count` rows, sorted, spread over the whole split (a seeded draw):
    the first rows would be the first classes in folder order. All rows when limit is 0."""
    if not limit or limit >= count:
        return np.arange(count)
    salt = int.from_bytes(split.encode(), "big")
    return np.sort(np.random.default_rng([seed, salt]).choice(count, limit, replace=False))


def read_split(folder: Path, split: str, limit: int = 0, seed: int = 0) -> np.ndarray:
    """The split's examples as one uint8 array, (N, 3, H, W) images channels first for torch
    or (N, context + 1) text windows; with `limit`, a seeded subset of N = limit rows spread
    over the split (`subset_rows`).

    Each shard's Arrow buffer is viewed without a copy and its chosen rows written once,
    transposed, into the preallocated result: peak memory is the result plus one shard
    (ImageNet at 64 px: 15.7 GB plus ~256 MiB), not two or three copies of the split.
    """
    manifest = read_manifest(folder)
    if manifest is None or split not in manifest["splits"]:
        valid = sorted(manifest["splits"]) if manifest else []
        raise PreparedDataError(f"no split {split!r} prepared in {folder}; prepared: {valid}")
    entry = manifest["splits"][split]
    chosen = subset_rows(entry["count"], limit, split, seed)
    total = len(chosen)
    out = np.empty((total, *example_shape(manifest)), dtype=np.uint8)
    filled, first_row = 0, 0
    for shard in entry["shards"]:
        column = pq.read_table(folder / shard, columns=["image"]).column("image")
        for chunk in column.chunks:
            rows = len(chunk)
            lo, hi = np.searchsorted(chosen, [first_row, first_row + rows])
            if hi > lo:
                out[filled : filled + hi - lo] = examples(chunk, manifest)[
                    chosen[lo:hi] - first_row
                ]
                filled += hi - lo
            first_row += rows
        if filled == total:
            break
    if filled != total:
        raise PreparedDataError(f"{folder}: split {split} has {filled} images, manifest {total}")
    return out


def example_shape(layout: dict) -> tuple[int, ...]:
    """One example's shape as training reads it, from a manifest (or `registry.layout`):
    (3, res, res) for images, (context + 1,) for text windows."""
    if layout.get("kind") == "text":
        return (layout["context"] + 1,)
    return (3, layout["resolution"], layout["resolution"])


def examples(chunk: pa.FixedSizeBinaryArray, layout: dict) -> np.ndarray:
    """A chunk of the `image` column as examples of `example_shape(layout)`: text windows are
    a view of Arrow's buffer, images a channels-first view of `pixels`."""
    if layout.get("kind") != "text":
        return pixels(chunk, layout["resolution"]).transpose(0, 3, 1, 2)
    width = layout["context"] + 1
    return np.frombuffer(
        chunk.buffers()[1], dtype=np.uint8, count=len(chunk) * width, offset=chunk.offset * width
    ).reshape(len(chunk), width)


def pixels(chunk: pa.FixedSizeBinaryArray, res: int) -> np.ndarray:
    """A chunk of the `image` column as (rows, res, res, 3) uint8, viewing Arrow's buffer (no
    copy; read-only)."""
    return np.frombuffer(
        chunk.buffers()[1],
        dtype=np.uint8,
        count=len(chunk) * res * res * 3,
        offset=chunk.offset * res * res * 3,
    ).reshape(len(chunk), res, res, 3)


def shard_paths(folder: Path, split: str) -> list[Path]:
    """The Parquet files of one prepared split, in row order."""
    manifest = read_manifest(folder)
    if manifest is None or split not in manifest["splits"]:
        raise PreparedDataError(f"no split {split!r} prepared in {folder}")
    return [folder / shard for shard in manifest["splits"][split]["shards"]]


def read_column(folder: Path, split: str, column: str) -> list:
    """One metadata column of a prepared split (source, class_id, index), in row order."""
    manifest = read_manifest(folder)
    if manifest is None or split not in manifest["splits"]:
        raise PreparedDataError(f"no split {split!r} prepared in {folder}")
    return [
        value
        for shard in manifest["splits"][split]["shards"]
        for value in pq.read_table(folder / shard, columns=[column]).column(column).to_pylist()
    ]
