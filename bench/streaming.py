"""The streamed train split (`data.stream=on`) against the in-memory one: training speed in real
trials, and the memory a trial's processes hold as the split grows tenfold.

Memory is what the data path adds: the private resident memory (`RssAnon`, from /proc) of this
process and every process below it (the Ray instance this bench started: raylet, workers running
Ray Data's reads), plus the object store's live bytes (Ray's own accounting), sampled every 50 ms
while the split is read, minus the same measured just before. Not the object store's resident
pages (`RssShmem`): the store's allocator leaves every page it has once used resident, up to the
store's size, which Ray sets aside at start whatever runs; counted, they made the row grow with
the bytes streamed rather than with what is held.
"""

import gc
import json
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import ray

from bench.rows import Row
from bench.servers import processes, status_kib, tree
from bench.training import BASE, steady, sweep_histories
from data.registry import images_to_load
from data.row_groups import split_parts
from data.shards import MANIFEST, SplitArrays, read_split, write_split
from trainers.config import ExperimentConfig
from trainers.paths import data_dir
from trainers.streaming import EpochStreams, epoch_batches, rank_epoch

RESOLUTION = 64
LAYOUT = {"resolution": RESOLUTION}  # as a prepared manifest gives it
RATE, WAIT = "train_images_per_s", "train_data_wait_share"
SHARD = 20_000  # images in the one shard written; larger splits link to it again and again
GROWTH = 10
# The stream's memory has a ceiling (Ray Data's object-store budget, one shard per read task
# in flight, the shuffle buffer), which a 20,000-image split (245 MB) does not reach: streamed,
# the split grows from 10 to 100 shards. In memory (which must fit), from 1 to 10.
STREAMED = (10 * SHARD, 100 * SHARD)
IN_MEMORY = (SHARD, 10 * SHARD)
MIB = 2**20
# Epochs the smaller streamed split is read for, as a worker reads them (the next one opened
# while this one is read): the processes the stream keeps must not grow with them.
EPOCHS = 3
SETTLED_BYTES = 16 * MIB  # the object store's live bytes a measurement starts from, at most


def speed_row() -> Row:
    """Steady train images/s of a real trial, streamed and in memory: the default model at
    64 px on CPU, 1 worker, the same images, seed and epochs."""
    base = BASE | {
        "resources.cpus_per_worker": 1,
        "data.resolution": RESOLUTION,
        "data.limit": 0,  # the sample's whole train split
        "train.epochs": 4,  # the steady state: the median of epochs 2-4
    }
    histories = {mode: sweep_histories(base | {"data.stream": mode})[0] for mode in ("off", "on")}
    rates = {mode: steady(history[RATE]) for mode, history in histories.items()}
    images = images_to_load(ExperimentConfig().with_overrides(base).data, data_dir(), ("train",))
    return Row(
        "streaming: streamed / in-memory training images/s",
        rates["on"] / rates["off"],
        0.9,
        True,
        f"the same trial with the train split in memory (default model, {RESOLUTION} px, CPU)",
        {
            "streamed_images_per_s": rates["on"],
            "in_memory_images_per_s": rates["off"],
            "streamed_data_wait_share": steady(histories["on"][WAIT]),
            "train_images_per_epoch": images,
        },
    )


def private_memory(root: int) -> tuple[int, int]:
    """Private resident bytes of `root` and all its descendants (Linux /proc), and how many
    processes that is."""
    private, count = 0, 0
    for pid in tree(root, processes()):
        try:
            private += status_kib(pid, "RssAnon") * 1024
        except OSError:
            continue  # gone meanwhile
        count += 1
    return private, count


def held_memory() -> tuple[int, int]:
    """This process tree's private memory plus the object store's live bytes, and its
    processes."""
    private, count = private_memory(os.getpid())
    return private + store_live(), count


class PeakMemory:
    """What the block adds at its peak to `held_memory()`, and the most processes it held."""

    def __enter__(self):
        self.before, self.processes = held_memory()
        self.peak, self.running = self.before, True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while self.running:
            held, count = held_memory()
            self.peak, self.processes = max(self.peak, held), max(self.processes, count)
            time.sleep(0.05)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()

    @property
    def added(self) -> int:
        return self.peak - self.before


def write_splits(folder: Path) -> dict[int, Path]:
    """Prepared train splits of every size in STREAMED and IN_MEMORY, written directly: SHARD
    random 64 px images in one shard, each split that many hard links to it (the same bytes on
    disk, the rows repeated for the reader)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (SHARD, RESOLUTION, RESOLUTION, 3), dtype=np.uint8)
    folder.mkdir(parents=True)
    [shard] = write_split(folder, "train", SplitArrays(images, np.zeros(SHARD), [""] * SHARD))
    del images
    sizes = {}
    for count in sorted({*STREAMED, *IN_MEMORY}):
        variant = folder / f"n{count}"
        variant.mkdir()
        names = [f"train-{i:05d}.parquet" for i in range(count // SHARD)]
        for name in names:
            os.link(folder / shard, variant / name)
        train = {"count": count, "shards": names}
        manifest = {"resolution": RESOLUTION, "splits": {"train": train}}
        (variant / MANIFEST).write_text(json.dumps(manifest))
        sizes[count] = variant
    return sizes


def store_live() -> int:
    """The object store's live bytes (Ray's own accounting)."""
    store = ray.cluster_resources().get("object_store_memory", 0)
    return int(store - ray.available_resources().get("object_store_memory", store))


def settle(timeout_s: float = 30.0) -> None:
    """Wait until the blocks of an earlier pass have left the object store (a closed stream's
    executor ends a moment later): measured from a baseline that still held them, a larger
    split's pass read as adding less than a smaller one's."""
    gc.collect()
    deadline = time.monotonic() + timeout_s
    while store_live() > SETTLED_BYTES and time.monotonic() < deadline:
        time.sleep(0.2)


def streamed_peak(folder: Path, epochs: int = 1) -> tuple[list[int], int, list[int]]:
    """(bytes added at the peak of each epoch, images of the first, the most processes during
    each) of `epochs` streamed epochs over `folder`'s train split, read as one worker reads them:
    its rows of each epoch, the next epoch's stream opened early (the last one read has a
    look-ahead too, as a trial's epochs but its last do), batches of 256, the local shuffle
    buffer; no training."""
    parts = split_parts(folder, "train")
    streams = EpochStreams(
        lambda e: epoch_batches(rank_epoch(parts, 0, e, 0, 1), LAYOUT, 256, 0, e, 0), epochs + 1
    )
    seen, processes, peaks = 0, [], []
    settle()
    try:
        for epoch in range(epochs):
            with PeakMemory() as memory:
                images = sum(len(batch) for batch in streams.batches(epoch))
            seen = seen or images
            peaks.append(memory.added)
            processes.append(memory.processes)
    finally:
        streams.close()
    return peaks, seen, processes


def in_memory_peak(folder: Path) -> tuple[int, int]:
    """(peak bytes, images) of the in-memory path: the split read into one array and put in
    the object store, as the sweep's driver does."""
    settle()
    with PeakMemory() as memory:
        images = read_split(folder, "train")
        ref = ray.put(images)
        seen = len(images)
        del images, ref
    return memory.added, seen


def memory_row() -> Row:
    with tempfile.TemporaryDirectory() as tmp:
        splits = write_splits(Path(tmp) / "prepared")
        # A first, unmeasured pass starts Ray Data's reader processes: measured, it made the
        # smaller split's peak the larger one.
        streamed_peak(splits[STREAMED[0]])
        # the smaller split for EPOCHS epochs (the processes kept across epochs), the larger once
        streamed = [streamed_peak(splits[STREAMED[0]], EPOCHS), streamed_peak(splits[STREAMED[1]])]
        in_memory = [in_memory_peak(splits[n]) for n in IN_MEMORY]
    assert [n for _, n, _ in streamed] == [n - n % 256 for n in STREAMED]  # every full batch
    return Row(
        f"streaming: peak memory, train split x{GROWTH}",
        streamed[1][0][0] / streamed[0][0][0],  # the first epoch of each
        1.2,
        False,
        f"{STREAMED[0]:,} -> {STREAMED[1]:,} images at {RESOLUTION} px streamed; the in-memory "
        f"path's growth from {IN_MEMORY[0]:,} -> {IN_MEMORY[1]:,} in detail",
        {
            # added by the data path at the peak of each epoch (from the epoch's start)
            "streamed_small_mib": [round(b / MIB) for b in streamed[0][0]],
            "streamed_large_mib": [round(b / MIB) for b in streamed[1][0]],
            "in_memory_small_mib": in_memory[0][0] / MIB,
            "in_memory_large_mib": in_memory[1][0] / MIB,
            "in_memory_growth": in_memory[1][0] / in_memory[0][0],
            # the most processes in this bench's tree (Ray's included) during each epoch
            "streamed_small_processes": streamed[0][2],
            "streamed_large_processes": streamed[1][2],
        },
    )


def streaming_rows() -> list[Row]:
    return [speed_row(), memory_row()]
