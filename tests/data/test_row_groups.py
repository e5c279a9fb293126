"""A streamed epoch's rows (data.row_groups) without Ray: every worker's part is a function of
the seed, the epoch, its rank and the number of workers, the parts of one epoch share out every
row once, and `data.limit` keeps the in-memory path's rows."""

import json

import numpy as np
import pytest

from data import shards
from data.row_groups import epoch_parts, read_part, split_parts
from data.shards import SplitArrays, read_split, write_split

IMAGES, RES = 103, 4  # 48 bytes an image


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A prepared train split of IMAGES images in two shards of row groups of 10 rows or less."""
    monkeypatch.setattr(shards, "SHARD_BYTES", 60 * 3 * RES * RES)
    monkeypatch.setattr(shards, "ROW_GROUP_BYTES", 10 * 3 * RES * RES)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (IMAGES, RES, RES, 3), dtype=np.uint8)
    names = write_split(tmp_path, "train", SplitArrays(images, np.zeros(IMAGES), [""] * IMAGES))
    manifest = {"resolution": RES, "splits": {"train": {"count": IMAGES, "shards": names}}}
    (tmp_path / shards.MANIFEST).write_text(json.dumps(manifest))
    return tmp_path


def indices(parts) -> list[int]:
    return [i for part in parts for i in read_part(part, ["index"])["index"].to_pylist()]


def test_the_split_is_read_by_row_group_and_a_limit_keeps_the_in_memory_rows(folder):
    parts = split_parts(folder, "train")
    assert len({part.path for part in parts}) == 2 and len(parts) == 6 + 5  # 60 + 43 rows
    assert indices(parts) == list(range(IMAGES))
    limited = split_parts(folder, "train", limit=17, seed=3)
    kept = shards.subset_rows(IMAGES, 17, "train", 3)
    assert indices(limited) == kept.tolist()
    pixels = np.concatenate(
        [shards.pixels(read_part(p, ["image"])["image"].combine_chunks(), RES) for p in limited]
    )
    assert np.array_equal(
        pixels, read_split(folder, "train", limit=17, seed=3).transpose(0, 2, 3, 1)
    )


@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_an_epoch_deals_every_row_once_in_equal_runs(folder, world):
    parts = split_parts(folder, "train")
    ranks = [indices(epoch_parts(parts, 11, rank, world)) for rank in range(world)]
    assert {len(rows) for rows in ranks} == {IMAGES // world}  # equal steps on every rank
    dealt = [i for rows in ranks for i in rows]
    assert len(set(dealt)) == len(dealt) == IMAGES - IMAGES % world
    assert dealt != sorted(dealt)  # the row groups in a seeded order
    one = indices(epoch_parts(parts, 11, 0, 1))
    assert dealt == one[: len(dealt)]  # the ranks cut one order of the epoch into runs


def test_each_epoch_has_its_order_and_a_rerun_repeats_it(folder):
    parts = split_parts(folder, "train")
    again = split_parts(folder, "train")  # a resumed trial plans again
    for rank in range(2):
        first = indices(epoch_parts(parts, 11, rank, 2))
        assert first == indices(epoch_parts(again, 11, rank, 2))
        assert first != indices(epoch_parts(parts, 12, rank, 2))


def test_more_workers_than_rows_read_nothing_rather_than_unequal_shares(folder):
    parts = split_parts(folder, "train", limit=3)
    assert [len(indices(epoch_parts(parts, 0, rank, 4))) for rank in range(4)] == [0, 0, 0, 0]
