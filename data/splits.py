"""Which training split (train / val / test) each source image goes to, under a protocol.

- `holdout`, the group's protocol: the official train split is cut 80/20 into train / val, and
  the official val split is the test split (an official test split is not used).
- `official`: train, val and test as the layout ships them; where it ships no test split, a
  fixed 10% held out from train is the test split.

The cut is a hash of (seed, the image's key): stable across runs, machines and listing order,
independent of which other files exist, and never puts one image in two splits.
"""

import hashlib
from dataclasses import dataclass

SPLITS = ("train", "val", "test")  # the training splits, in this order everywhere
PROTOCOLS = ("holdout", "official")
VAL_SHARE = 0.2  # holdout: share of official train that becomes val
TEST_SHARE = 0.1  # official without a test split: share of train that becomes test


def unit_hash(seed: int, salt: str, key: str) -> float:
    """A uniform number in [0, 1) fixed by (seed, salt, key)."""
    digest = hashlib.blake2b(f"{seed}/{salt}/{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True)
class Splitter:
    protocol: str
    seed: int = 0
    has_test: bool = False  # whether the layout ships a test split of its own

    def __post_init__(self):
        if self.protocol not in PROTOCOLS:
            raise ValueError(
                f"data.protocol must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}"
            )

    def assign(self, official: str, key: str) -> str | None:
        """The training split of the image `key` from the official split, or None (unused)."""
        if self.protocol == "holdout":
            if official == "train":
                return "val" if unit_hash(self.seed, "val", key) < VAL_SHARE else "train"
            return "test" if official == "val" else None
        if official == "train" and not self.has_test:
            return "test" if unit_hash(self.seed, "test", key) < TEST_SHARE else "train"
        return official

    def describe(self) -> str:
        if self.protocol == "holdout":
            return f"train cut {1 - VAL_SHARE:.0%}/{VAL_SHARE:.0%} into train/val (seed {self.seed}); val is test"
        if self.has_test:
            return "official train, val and test"
        return (
            f"official train and val; {TEST_SHARE:.0%} of train held out as test (seed {self.seed})"
        )
