"""The train split streamed from its Parquet shards by Ray Data, for splits the object store
cannot hold (ImageNet's holdout train split is 16 GB at 64 px, 252 GB at 256 px).

Each Train worker reads its own rows of each epoch (`data.row_groups.epoch_parts`: the row
groups in an order seeded by the trial's seed and the epoch, cut into equal runs, one per rank)
as a Ray Data dataset of its own, one read task per row group in that order, and shuffles them
in a local buffer seeded by the seed, the epoch and its rank. Which rows a rank trains on in a
step is therefore the same in every rerun, on any number of workers, and a resumed trial repeats
the epochs it redoes. Nothing outside the workers hands rows out: Ray Train's split of a dataset
starts a coordinator process per dataset, one per epoch for the whole trial.
"""

import functools
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import ray.data
import torch
from ray.data import ExecutionOptions, ExecutionResources
from ray.data.block import BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from data.config import DataConfig
from data.row_groups import Part, epoch_parts, read_part
from data.shards import examples
from trainers.steps import epoch_seed

# `data.stream=auto` streams a train split larger than this share of the largest node's object
# store: every node that hosts a worker holds a copy of an in-memory split, next to val, test
# and Ray's own objects.
AUTO_SHARE = 0.5
READ_CPUS = 0.25  # each Ray Data read task; `stream_cpus` per trial are left free for them
# Read tasks in flight per trial and stream, shared among its workers. Each reads one row group
# (~8 MiB, `data.shards.ROW_GROUP_BYTES`). When a read was a whole 256 MiB shard, Ray Data ran
# 3-4 at once without a cap and a stream's private memory grew with the split; two kept it flat.
READ_TASKS = 2
# Streams a trial runs at once: the epoch it trains on and the next one's look-ahead
# (`EpochStreams`), each with its reads in flight. A reserve for one made the look-ahead's
# reads queue for the current epoch's CPU, or other trials' CPU.
STREAMS_AT_ONCE = 2
SHUFFLE_BATCHES = 4  # the local shuffle buffer holds this many batches of rows
# Blocks a stream may hold in the object store at once: Ray Data's default budget is a share of
# the whole store, which a large split fills (reads outrun training), so a trial's memory would
# grow with the split up to that share. This bound caps it (a read in flight can overshoot it
# by its row group).
STREAM_OBJECT_STORE_BYTES = 256 * 2**20


def streams(cfg: DataConfig, train_bytes: int, object_store_bytes: float) -> bool:
    """Whether the train split is streamed: `on`, `off`, or `auto` by the size rule."""
    if cfg.stream != "auto":
        return cfg.stream == "on"
    return train_bytes > AUTO_SHARE * object_store_bytes


def rank_reads(workers: int) -> int:
    """Read tasks in flight per stream of one worker: READ_TASKS shared among a trial's workers,
    at least one each."""
    return max(1, READ_TASKS // workers)


def stream_cpus(workers: int) -> float:
    """CPUs a streamed trial leaves free for its reads: every worker's streams at once."""
    return READ_CPUS * rank_reads(workers) * workers * STREAMS_AT_ONCE


COLUMNS = ["index", "image"]


class TrainParts(Datasource):
    """One read task per part, in the parts' order, which Ray Data keeps (`preserve_order`)."""

    def __init__(self, parts: list[Part]):
        super().__init__()
        self.parts = parts

    def estimate_inmemory_data_size(self) -> int:
        return sum(len(part) * part.row_bytes for part in self.parts)

    def get_read_tasks(self, parallelism: int, per_task_row_limit=None, data_context=None):
        return [
            ReadTask(
                functools.partial(read_blocks, part),
                BlockMetadata(
                    num_rows=len(part),
                    size_bytes=int(len(part) * part.row_bytes),
                    exec_stats=None,
                    input_files=[part.path],
                ),
            )
            for part in self.parts
        ]


def read_blocks(part: Part) -> list:
    return [read_part(part, COLUMNS)]


def rank_epoch(parts: list[Part], seed: int, epoch: int, rank: int, world: int):
    """This rank's rows of one epoch as a lazy dataset: `rank_reads` at a time, at most
    STREAM_OBJECT_STORE_BYTES of blocks in the object store, in `epoch_parts`' order."""
    mine = epoch_parts(parts, epoch_seed(seed, epoch), rank, world)
    dataset = ray.data.read_datasource(
        TrainParts(mine),
        num_cpus=READ_CPUS,
        concurrency=rank_reads(world),
        override_num_blocks=max(len(mine), 1),
    )
    dataset.context.execution_options = execution_options()
    return dataset


def execution_options() -> ExecutionOptions:
    """Blocks in a fixed order (deterministic reads), at most STREAM_OBJECT_STORE_BYTES of them."""
    limits = ExecutionResources(object_store_memory=STREAM_OBJECT_STORE_BYTES)
    return ExecutionOptions(preserve_order=True, resource_limits=limits)


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
