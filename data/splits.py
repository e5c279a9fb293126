"""Which training split (train / val / test) each source image goes to, under a protocol.

- `holdout`, the group's protocol: the official train split is cut 80/20 into train / val, and
  the official val split is the test split (an official test split is not used).
- `official`: train, val and test as the layout ships them; where it ships no test split, a
  fixed 10% held out from train is the test split.
- `random-split`: the group's exact cut, `torch.utils.data.random_split(train, [int(0.8 n),
  n - int(0.8 n)], generator=torch.Generator().manual_seed(seed))` over official train in
  torchvision's `ImageFolder` order (classes sorted, files sorted), the official val as test.

The `holdout` and `official` cuts are a hash of (seed, the image's key): stable across runs,
machines and listing order, independent of which other files exist. `random-split` depends on
the whole file list, as the group's did (one file more or less reshuffles every image). No
protocol puts one image in two splits.
"""

import functools
import hashlib
from dataclasses import dataclass

import numpy as np

SPLITS = ("train", "val", "test")  # the training splits, in this order everywhere
PROTOCOLS = ("holdout", "official", "random-split")
VAL_SHARE = 0.2  # holdout: share of official train that becomes val
TEST_SHARE = 0.1  # official without a test split: share of train that becomes test


def unit_hash(seed: int, salt: str, key: str) -> float:
    """A uniform number in [0, 1) fixed by (seed, salt, key)."""
    digest = hashlib.blake2b(f"{seed}/{salt}/{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@functools.lru_cache(maxsize=4)
def random_split_val(seed: int, count: int) -> np.ndarray:
    """Bool (count,): True for the official-train positions that torch's `random_split` with
    lengths [int(0.8 count), rest] and a generator seeded `seed` puts in its second part."""
    import torch  # only this protocol needs torch's own permutation

    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed)).numpy()
    held_out = np.zeros(count, dtype=bool)
    held_out[order[int(count * (1 - VAL_SHARE)) :]] = True
    return held_out


@dataclass(frozen=True)
class Splitter:
    protocol: str
    seed: int = 0
    has_test: bool = False  # whether the layout ships a test split of its own
    train_count: int = 0  # random-split: files in official train (the permutation's length)

    def __post_init__(self):
        if self.protocol not in PROTOCOLS:
            raise ValueError(
                f"data.protocol must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}"
            )

    def assign(self, official: str, key: str, index: int = -1) -> str | None:
        """The training split of the image `key` (at `index` in its official split's sorted
        listing) from the official split, or None (unused)."""
        if self.protocol == "random-split":
            if official == "train":
                if not 0 <= index < self.train_count:
                    raise ValueError(f"random-split needs {key}'s position in official train")
                return "val" if random_split_val(self.seed, self.train_count)[index] else "train"
            return "test" if official == "val" else None
        if self.protocol == "holdout":
            if official == "train":
                return "val" if unit_hash(self.seed, "val", key) < VAL_SHARE else "train"
            return "test" if official == "val" else None
        if official == "train" and not self.has_test:
            return "test" if unit_hash(self.seed, "test", key) < TEST_SHARE else "train"
        return official

    def describe(self) -> str:
        if self.protocol == "random-split":
            return (
                f"train cut by torch random_split {1 - VAL_SHARE:.0%}/{VAL_SHARE:.0%} into "
                f"train/val (torch.Generator seeded {self.seed}, over the sorted file list); "
                "val is test"
            )
        if self.protocol == "holdout":
            return f"train cut {1 - VAL_SHARE:.0%}/{VAL_SHARE:.0%} into train/val (seed {self.seed}); val is test"
        if self.has_test:
            return "official train, val and test"
        return (
            f"official train and val; {TEST_SHARE:.0%} of train held out as test (seed {self.seed})"
        )
