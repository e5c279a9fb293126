"""The streamed train split (`data.stream=on`) against the in-memory one: training speed in real
trials, and the memory a trial's processes hold as the split grows tenfold.

Memory is the peak of the summed resident memory of this process and every process below it
(the Ray instance this bench started: raylet, object store, workers running Ray Data's reads),
sampled every 50 ms from /proc while the data is read. RSS counts a shared page in every process
that touches it, so it overstates both paths alike; what is compared is how each grows.
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
from data.shards import MANIFEST, SplitArrays, read_split, write_split
from trainers.streaming import epoch_batches

RESOLUTION = 64
SMALL = 20_000  # images in the small split; the large one is 10x (links to the same shard)
GROWTH = 10
MIB = 2**20


def speed_row() -> Row:
    """Steady train images/s of a real trial, streamed and in memory: the default model at
    64 px on CPU, 1 worker, the same 512 images, seed and epochs."""
    base = BASE | {"resources.cpus_per_worker": 1, "data.resolution": RESOLUTION}
    rates = {
        mode: steady(sweep_histories(base | {"data.stream": mode})[0]["train_images_per_s"])
        for mode in ("off", "on")
    }
    return Row(
        "streaming: streamed / in-memory training images/s",
        rates["on"] / rates["off"],
        0.9,
        True,
        f"the same trial with the train split in memory (default model, {RESOLUTION} px, CPU)",
        {"streamed_images_per_s": rates["on"], "in_memory_images_per_s": rates["off"]},
    )


def tree_rss(root: int) -> int:
    """Bytes resident in `root` and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


class PeakMemory:
    """The peak of `tree_rss(this process)` while the block runs."""

    def __enter__(self):
        self.peak, self.running = tree_rss(os.getpid()), True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, tree_rss(os.getpid()))
            time.sleep(0.05)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()


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
    seen = 0
    with PeakMemory() as memory:
        for batch in epoch_batches(dataset.iterator(), RESOLUTION, 256, 0, 0, 0):
            seen += len(batch)
    return memory.peak, seen


def in_memory_peak(folder: Path) -> tuple[int, int]:
    """(peak bytes, images) of the in-memory path: the split read into one array and put in
    the object store, as the sweep's driver does."""
    with PeakMemory() as memory:
        images = read_split(folder, "train")
        ref = ray.put(images)
        seen = len(images)
        del images, ref
    return memory.peak, seen


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
            "streamed_small_mib": streamed[0][0] / MIB,
            "streamed_large_mib": streamed[1][0] / MIB,
            "in_memory_small_mib": in_memory[0][0] / MIB,
            "in_memory_large_mib": in_memory[1][0] / MIB,
            "in_memory_growth": in_memory[1][0] / in_memory[0][0],
        },
    )


def streaming_rows() -> list[Row]:
    return [speed_row(), memory_row()]
