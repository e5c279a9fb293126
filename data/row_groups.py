"""The train split as Parquet row groups, and each worker's part of one epoch of them.

A streamed trial reads its train split by row group: every epoch deals the split's rows to the
trial's workers in an order seeded by the trial's seed and the epoch, each worker an equal,
contiguous run of that order (the rows that do not divide are dropped, as Ray Data's equal
split did). Which rows a worker reads in an epoch therefore depends only on the seed, the epoch,
its rank and the number of workers: a rerun or a resumed trial reads the same rows on every
rank, and no process outside the workers has to hand rows out (Ray Data's split coordinator
was one process per epoch per trial).

Only metadata is read here (row counts from the Parquet footers); `data.limit` keeps the same
rows as the in-memory path, chosen by row position (`shards.subset_rows`).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from data.config import DataConfig
from data.shards import shard_paths, subset_rows


@dataclass(frozen=True, eq=False)
class Part:
    """Rows of one row group that one read reads: `rows` are positions within the group."""

    path: str
    group: int
    rows: np.ndarray
    row_bytes: int  # the group's bytes per row in memory (an estimate for Ray Data's planning)

    def __len__(self) -> int:
        return len(self.rows)


def split_parts(folder, split: str, limit: int = 0, seed: int = 0) -> list[Part]:
    """Every row group of a prepared split with the rows kept of it (`limit`: the same seeded
    subset as `shards.read_split`), in row order; groups with none kept are left out."""
    return file_parts(shard_paths(Path(folder), split), split, limit, seed)


def file_parts(paths, split: str = "train", limit: int = 0, seed: int = 0) -> list[Part]:
    """`split_parts` over Parquet files given in row order."""
    groups = []
    for path in paths:
        meta = pq.ParquetFile(path).metadata
        for group in range(meta.num_row_groups):
            info = meta.row_group(group)
            groups.append((str(path), group, info.num_rows, info.total_byte_size))
    total = sum(rows for _, _, rows, _ in groups)
    kept = subset_rows(total, limit, split, seed)
    parts, start = [], 0
    for path, group, rows, size in groups:
        lo, hi = np.searchsorted(kept, [start, start + rows])
        if hi > lo:
            positions = (kept[lo:hi] - start).astype(np.int32)
            parts.append(Part(path, group, positions, max(1, size // rows)))  # rows > 0 here
        start += rows
    return parts


def train_parts(cfg: DataConfig, folder) -> list[Part]:
    """The train split's row groups with the rows a trial of `cfg` trains on."""
    return split_parts(folder, "train", cfg.limit, cfg.split_seed)


def epoch_parts(parts: list[Part], order_seed: int, rank: int, world: int) -> list[Part]:
    """This rank's rows of one epoch, in reading order: the row groups shuffled by `order_seed`,
    their kept rows laid end to end and cut into `world` equal runs; rank r reads run r."""
    order = np.random.default_rng(order_seed).permutation(len(parts))
    share = sum(map(len, parts)) // world
    lo, hi = rank * share, (rank + 1) * share
    mine, start = [], 0
    for i in order:
        part = parts[i]
        a, b = max(lo - start, 0), min(hi - start, len(part))
        if a < b:
            mine.append(Part(part.path, part.group, part.rows[a:b], part.row_bytes))
        start += len(part)
        if start >= hi:
            break
    return mine


def read_part(part: Part, columns: list[str]) -> pa.Table:
    """One part's rows, in the order of `part.rows`."""
    table = pq.ParquetFile(part.path).read_row_group(part.group, columns=columns)
    return table.take(pa.array(part.rows))
