"""The split hash pinned: a change to it would silently move images between train, val and
test, so known paths keep known splits; and a path's split depends on nothing but itself."""

import hashlib
import random

import pytest

from data.splits import Splitter, unit_hash

WNID = "train/n01440764/n01440764_{}.JPEG"


@pytest.mark.parametrize(
    ("number", "seed0", "seed7"),
    [
        (10000, "train", "val"),
        (10001, "train", "train"),
        (10003, "val", "train"),
        (10005, "train", "val"),
        (10012, "val", "val"),
        (10014, "val", "train"),
        (10016, "val", "val"),
    ],
)
def test_known_paths_keep_their_holdout_split(number, seed0, seed7):
    path = WNID.format(number)
    assert Splitter("holdout", 0).assign("train", path) == seed0
    assert Splitter("holdout", 7).assign("train", path) == seed7
    assert Splitter("holdout", 0).assign("val", path) == "test"  # official val is test


def test_known_paths_keep_their_official_test_slice():
    official = Splitter("official", 0)
    held = [n for n in range(10000, 10040) if official.assign("train", WNID.format(n)) == "test"]
    assert held[:4] == [10011, 10030, 10032, 10033]


def test_the_hash_is_blake2b_of_seed_salt_and_path():
    digest = hashlib.blake2b(f"0/val/{WNID.format(10000)}".encode(), digest_size=8).digest()
    assert unit_hash(0, "val", WNID.format(10000)) == int.from_bytes(digest, "big") / 2**64


def test_a_split_depends_on_neither_listing_order_nor_other_files():
    paths = [WNID.format(n) for n in range(10000, 10400)]
    splitter = Splitter("holdout", 3)
    alone = {p: splitter.assign("train", p) for p in paths}
    shuffled = paths[:]
    random.Random(0).shuffle(shuffled)
    more = shuffled + [f"train/n09999999/extra_{i}.JPEG" for i in range(500)]
    assert {p: splitter.assign("train", p) for p in more if p in alone} == alone
    assert 0.15 < sum(s == "val" for s in alone.values()) / len(alone) < 0.25
