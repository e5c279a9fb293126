"""The train split streamed from its Parquet shards by Ray Data, for splits the object store
cannot hold (ImageNet's holdout train split is 16 GB at 64 px, 252 GB at 256 px).

The driver builds one Ray Data dataset per epoch, each reading the shards' row groups in an
order seeded by the trial's seed and that epoch; Ray Train splits each among the trial's workers
(equal rows per worker, so every rank runs the same number of steps), and each worker shuffles
its stream in a local buffer seeded by the seed, the epoch and its rank. A trial rerun on one
worker therefore sees the same batches, and a resumed trial repeats the epochs it redoes. With
several workers, Ray Data hands blocks to whichever worker asks first: which images a rank
trains on in a step may differ between reruns (each image is still seen once per epoch).
"""

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import ray.data
import ray.train
import torch
from ray.data import ExecutionOptions, ExecutionResources, RandomSeedConfig

from data.config import DataConfig
from data.shards import examples, shard_paths, subset_filter
from trainers.steps import epoch_seed

# `data.stream=auto` streams a train split larger than this share of the largest node's object
# store: every node that hosts a worker holds a copy of an in-memory split, next to val, test
# and Ray's own objects.
AUTO_SHARE = 0.5
READ_CPUS = 0.25  # each Ray Data read task; STREAM_CPUS per trial are left free for them
# Read tasks in flight per stream. Each reads one shard (up to 256 MiB of images) and holds
# its buffers while it does: without a cap, Ray Data ran 3-4 at once and a stream's private
# memory grew with the split (+1.75-2.0 GB at 200,000 images against +0.15-0.27 GB at 20,000);
# with two, +0.3 GB, and the 200,000 images streamed as fast (6.5 s against 7.3 s, no training).
READ_TASKS = 2
# Ray Data plans every epoch's read anew, and reads the shards' Parquet footers in actors of its
# own: up to 32 by default, each a fresh process (~107 MiB). On 2 cores they ran beside training
# at every epoch's start: streamed epochs 2-4 trained at 45-68 images/s with the default, 59-72
# with one (in memory: ~70). Footers are a few KB a shard; one actor reads them with 128
# threads. Set for the whole Ray job (`sweeps.run.cluster.ensure_ray`); a value you export wins.
RAY_DATA_ENV = {"RAY_DATA_PARQUET_FOOTER_NUM_ACTORS": "1"}
# Streams a trial runs at once: the epoch it trains on and the next one's look-ahead
# (`EpochStreams`), each with READ_TASKS reads in flight. A reserve for one made the look-ahead's
# reads queue for the current epoch's CPU, or other trials' CPU.
STREAMS_AT_ONCE = 2
STREAM_CPUS = READ_CPUS * READ_TASKS * STREAMS_AT_ONCE
SHUFFLE_BATCHES = 4  # the local shuffle buffer holds this many batches of rows
# Blocks a stream may hold in the object store at once: Ray Data's default budget is a share of
# the whole store, which a large split fills (reads outrun training), so a trial's memory would
# grow with the split up to that share. This bound caps it; a read's shard can overshoot it
# (the live bytes peaked at ~480 MiB with READ_TASKS shards of 245 MB in flight).
STREAM_OBJECT_STORE_BYTES = 256 * 2**20


def streams(cfg: DataConfig, train_bytes: int, object_store_bytes: float) -> bool:
    """Whether the train split is streamed: `on`, `off`, or `auto` by the size rule."""
    if cfg.stream != "auto":
        return cfg.stream == "on"
    return train_bytes > AUTO_SHARE * object_store_bytes


def epoch_name(epoch: int) -> str:
    return f"train-{epoch}"


def train_datasets(cfg: DataConfig, folder: str, seed: int, epochs: int) -> dict:
    """One lazy dataset per epoch over the prepared train shards in `folder` (`data.limit`: the
    same seeded subset as the in-memory path, chosen by row and filtered by the stored index)."""
    folder = Path(folder)
    paths = [str(p) for p in shard_paths(folder, "train")]
    base = read_train(paths)
    if cfg.limit:
        chosen = subset_filter(folder, "train", cfg.limit, cfg.split_seed)
        base = base.map_batches(chosen, batch_format="pyarrow", num_cpus=READ_CPUS)
    return {
        epoch_name(epoch): base.randomize_block_order(
            seed=RandomSeedConfig(seed=epoch_seed(seed, epoch), reseed_after_execution=False)
        )
        for epoch in range(epochs)
    }


def read_train(paths: list[str]) -> ray.data.Dataset:
    """The train shards' rows (index, image) as a lazy dataset: READ_TASKS reads at a time."""
    return ray.data.read_parquet(
        paths, columns=["index", "image"], num_cpus=READ_CPUS, concurrency=READ_TASKS
    )


def execution_options() -> ExecutionOptions:
    """Blocks in a fixed order (deterministic reads), at most STREAM_OBJECT_STORE_BYTES of them."""
    limits = ExecutionResources(object_store_memory=STREAM_OBJECT_STORE_BYTES)
    return ExecutionOptions(preserve_order=True, resource_limits=limits)


def data_config(epochs: int) -> ray.train.DataConfig:
    """Split every epoch's dataset among the workers (`execution_options`)."""
    names = [epoch_name(epoch) for epoch in range(epochs)]
    return ray.train.DataConfig(datasets_to_split=names, execution_options=execution_options())


def epoch_batches(
    shard, layout: dict, batch_size: int, seed: int, epoch: int, rank: int
) -> Iterator[torch.Tensor]:
    """This worker's uint8 batches of one epoch, examples as `data.shards.example_shape(layout)`
    says ((B, 3, H, W) images, (B, context + 1) text windows): full batches only (the last
    partial one is dropped, as in memory), locally shuffled by seed, epoch and rank."""
    rows = shard.iter_batches(
        batch_size=batch_size,
        batch_format="pyarrow",
        drop_last=True,
        local_shuffle_buffer_size=SHUFFLE_BATCHES * batch_size,
        local_shuffle_seed=epoch_seed(seed, epoch, rank),
    )
    for table in rows:
        rows_of = examples(table.column("image").combine_chunks(), layout)
        yield torch.from_numpy(rows_of.copy())


class EpochStreams:
    """Each epoch's batches, with the next epoch's stream started while this one trains.

    Ray Data starts every epoch's execution anew (its read tasks in worker processes that Ray
    may have reaped between epochs): the first batch of an epoch waited ~4 s here, then every
    batch arrived at once. Opening epoch e+1 and pulling its first batch on a thread while
    epoch e trains hides that wait; the order of every epoch's rows is unchanged."""

    def __init__(self, open_epoch: Callable[[int], Iterator[torch.Tensor]], epochs: int):
        self.open_epoch, self.epochs = open_epoch, epochs
        self.early: dict[int, tuple[Iterator[torch.Tensor], Future]] = {}
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="ovat-next-epoch")

    def batches(self, epoch: int) -> Iterator[torch.Tensor]:
        if epoch in self.early:
            rows, first = self.early.pop(epoch)
        else:
            rows = self.open_epoch(epoch)
            first = self.thread.submit(next, rows, None)
        if epoch + 1 < self.epochs and epoch + 1 not in self.early:
            ahead = self.open_epoch(epoch + 1)  # opened here: Train's context is this thread's
            self.early[epoch + 1] = (ahead, self.thread.submit(next, ahead, None))
        return self._chain(first, rows)

    def close(self) -> None:
        """Stop the look-ahead: a prefetch still waiting is cancelled and the thread ends, so a
        trial that ends early (a divergence, an error) leaves no thread behind in its actor."""
        for rows, first in self.early.values():
            first.cancel()
            close = getattr(rows, "close", None)
            if close is not None and first.done():
                close()
        self.early.clear()
        self.thread.shutdown(wait=False, cancel_futures=True)

    @staticmethod
    def _chain(first: Future, rows: Iterator[torch.Tensor]) -> Iterator[torch.Tensor]:
        batch = first.result()  # raises what the stream raised
        if batch is None:
            return
        yield batch
        yield from rows
