"""Scoring a model on a split with its fixed masks: the same code in trials and follow-ups, so
a re-evaluated checkpoint reproduces the trial's logged loss exactly."""

import warnings
from collections.abc import Callable

import numpy as np
import torch

from data.registry import prepare
from data.shards import read_split
from data.splits import SPLITS
from trainers.config import ExperimentConfig
from trainers.fastpath import PLAIN, FastPath
from trainers.objectives import objective
from trainers.paths import data_dir
from trainers.steps import Sums, evaluate

EVAL_BATCH = 256
EVAL_SPLITS = ("val", "test")  # always in memory, with fixed per-image masks


def as_tensor(array: np.ndarray) -> torch.Tensor:
    """Object-store arrays are read-only views; they are only ever read, so share, don't copy."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(array)


def load_splits(cfg: ExperimentConfig, names=SPLITS) -> dict[str, np.ndarray]:
    """Prepare the config's data variant once, then read the named splits as uint8 arrays."""
    folder = prepare(cfg.data, data_dir())
    data = cfg.data
    return {name: read_split(folder, name, data.limit, data.split_seed) for name in names}


class Evaluator:
    """One split with its fixed masks, sliced to this rank; the same masks in every trial."""

    def __init__(self, images: np.ndarray, cfg: ExperimentConfig, rank: int = 0, world: int = 1,
                 reduce: Callable[[Sums], Sums] = lambda sums: sums,
                 reduce_stats: Callable[[dict, int], dict] = lambda stats, batches: stats):  # fmt: skip
        keep = objective(cfg.data).fixed_keep(len(images), cfg.data)
        self.all_images, self.all_keep = as_tensor(images), keep  # views: no copy
        self.images, self.keep = self.all_images[rank::world], keep[rank::world]
        self.cfg, self.reduce, self.reduce_stats = cfg, reduce, reduce_stats

    def first(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The split's first n images and their masks, the same on every rank and trial."""
        return self.all_images[:n], self.all_keep[:n]

    def __call__(
        self, model: torch.nn.Module, device: torch.device, fast: FastPath = PLAIN
    ) -> tuple[float, dict]:
        data = self.cfg.data
        sums, stats = evaluate(model, self.images, self.keep, data, EVAL_BATCH, device, fast)
        batches = -(-len(self.images) // EVAL_BATCH)  # the split's, not this rank's, statistics
        return self.reduce(sums).mean, self.reduce_stats(stats, batches)
