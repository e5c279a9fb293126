"""The streamed train split (`data.stream=on`) against the in-memory one: training speed in real
trials, and the memory a trial's processes hold as the split grows tenfold.

Memory is what the data path adds: over this process and every process below it (the Ray
instance this bench started: raylet, object store, workers running Ray Data's reads), the sum of
private resident memory (`RssAnon`) plus the largest shared-memory residency (`RssShmem`: the
object store's pages, mapped by several processes, counted once), sampled every 50 ms from /proc
while the split is read, minus the same measured just before.
"""

import json
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import ray

from bench.rows import Row
from bench.training import BASE, steady, sweep_histories
from data.registry import images_to_load
from data.shards import MANIFEST, SplitArrays, read_split, write_split
from trainers.config import ExperimentConfig
from trainers.paths import data_dir
from trainers.streaming import epoch_batches, execution_options

RESOLUTION = 64
RATE, WAIT = "train_images_per_s", "train_data_wait_share"
SMALL = 20_000  # images in the small split; the large one is 10x (links to the same shard)
GROWTH = 10
MIB = 2**20


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


def tree_memory(root: int) -> int:
    """Private resident bytes of `root` and all its descendants, plus the largest shared-memory
    residency among them (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    private = shared = 0
    todo = [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            fields = dict(
                line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            )
        except OSError:
            continue
        private += int(fields.get("RssAnon", "0 kB").split()[0]) * 1024
        shared = max(shared, int(fields.get("RssShmem", "0 kB").split()[0]) * 1024)
    return private + shared


class PeakMemory:
    """What the block adds at its peak to `tree_memory(this process)`."""

    def __enter__(self):
        self.before = tree_memory(os.getpid())
        self.peak, self.running = self.before, True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, tree_memory(os.getpid()))
            time.sleep(0.05)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()

    @property
    def added(self) -> int:
        return self.peak - self.before


def write_splits(folder: Path) -> dict[int, Path]:
    """Two prepared train splits, written directly: SMALL random 64 px images in one shard, and
    GROWTH x SMALL as GROWTH hard links to that shard (the same bytes on disk, GROWTH times the
    rows for the reader)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (SMALL, RESOLUTION, RESOLUTION, 3), dtype=np.uint8)
    folder.mkdir(parents=True)
    [shard] = write_split(folder, "train", SplitArrays(images, np.zeros(SMALL), [""] * SMALL))
    del images
    sizes = {}
    for copies in (1, GROWTH):
        variant = folder / f"x{copies}"
        variant.mkdir()
        names = [f"train-{i:05d}.parquet" for i in range(copies)]
        for name in names:
            os.link(folder / shard, variant / name)
        train = {"count": SMALL * copies, "shards": names}
        manifest = {"resolution": RESOLUTION, "splits": {"train": train}}
        (variant / MANIFEST).write_text(json.dumps(manifest))
        sizes[SMALL * copies] = variant
    return sizes


def streamed_peak(folder: Path) -> tuple[int, int]:
    """(peak bytes, images) of one streamed epoch over `folder`'s train split, as a worker
    reads it (batches of 256, the local shuffle buffer, no training)."""
    paths = sorted(str(p) for p in folder.glob("train-*.parquet"))
    dataset = ray.data.read_parquet(paths, columns=["index", "image"], num_cpus=0.25)
    dataset.context.execution_options = execution_options()  # as Ray Train runs it
    seen = 0
    with PeakMemory() as memory:
        for batch in epoch_batches(dataset.iterator(), RESOLUTION, 256, 0, 0, 0):
            seen += len(batch)
    return memory.added, seen


def in_memory_peak(folder: Path) -> tuple[int, int]:
    """(peak bytes, images) of the in-memory path: the split read into one array and put in
    the object store, as the sweep's driver does."""
    with PeakMemory() as memory:
        images = read_split(folder, "train")
        ref = ray.put(images)
        seen = len(images)
        del images, ref
    return memory.added, seen


def memory_row() -> Row:
    with tempfile.TemporaryDirectory() as tmp:
        splits = write_splits(Path(tmp) / "prepared")
        small, large = splits[SMALL], splits[SMALL * GROWTH]
        streamed = [streamed_peak(small), streamed_peak(large)]
        in_memory = [in_memory_peak(small), in_memory_peak(large)]
    assert [n for _, n in streamed] == [SMALL - SMALL % 256, SMALL * GROWTH - SMALL * GROWTH % 256]
    return Row(
        f"streaming: peak memory, train split x{GROWTH}",
        streamed[1][0] / streamed[0][0],
        1.2,
        False,
        f"{SMALL:,} -> {SMALL * GROWTH:,} images at {RESOLUTION} px; the in-memory path's growth "
        "in detail",
        {
            "streamed_small_mib": streamed[0][0] / MIB,  # added by the data path, at its peak
            "streamed_large_mib": streamed[1][0] / MIB,
            "in_memory_small_mib": in_memory[0][0] / MIB,
            "in_memory_large_mib": in_memory[1][0] / MIB,
            "in_memory_growth": in_memory[1][0] / in_memory[0][0],
        },
    )


def streaming_rows() -> list[Row]:
    return [speed_row(), memory_row()]
