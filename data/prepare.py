"""Preparing an on-disk variant once: decode in parallel, write Parquet shards part by part,
survive interruption, publish the manifest last.

- Parallel: with Ray up (a sweep's driver, `make prepare`) each chunk of files is a Ray task,
  so every node's cores decode; without Ray (unit tests, a laptop) the chunks run in-process.
- Resumable: parts are written into `.<name>.partial/` beside the final folder, each as its
  shards plus a `part-<name>.json` written last. An interrupted preparation with the same file
  list picks up at the first missing part; a different file list starts over.
- Never half-published: the manifest is written only when every part is there, then the whole
  folder is renamed into place. A folder with a manifest is complete.
- One at a time: a lock file serialises two drivers preparing the same variant.
"""

import fcntl
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data.decode import DECODERS, Decoded
from data.layouts import LayoutError, Listing
from data.shards import (
    FORMAT_VERSION,
    MANIFEST,
    SHARD_BYTES,
    SplitArrays,
    read_manifest,
    write_split,
)
from data.splits import SPLITS, Splitter

RESIZE_DETAIL = {
    "crop": "shorter side to resolution (bilinear, antialiased), centre crop",
    "squash": "the whole image to resolution x resolution (bilinear, antialiased), no crop",
}
# The oldest format whose shards are still right, by decoder: before format 3 a batch layout's
# `index` repeated across its batch files, and a streamed `data.limit` kept the wrong rows.
OLDEST_RIGHT_FORMAT = {"files": 2, "arrays": 3}
CHUNK_FILES = 256  # files per decode task: about a second of work, enough to amortise a task


@dataclass(frozen=True)
class Part:
    """Consecutive files of one official split, written as one group of shards."""

    name: str  # e.g. "train-00003": its shards are "<split>-train-00003-00000.parquet"
    decoder: str
    chunks: tuple[dict, ...]  # the decoder's keyword arguments, one task each


def plan_parts(
    listing: Listing, res: int, splitter: Splitter, side: int, resize: str = "crop"
) -> list[Part]:
    root, parts = str(listing.root), []
    if listing.decoder == "arrays":
        for official, split in listing.splits.items():
            for k, path in enumerate(split.paths):
                task = {
                    "root": root,
                    "path": path,
                    "official": official,
                    "res": res,
                    "side": side,
                    "splitter": splitter,
                    "file_number": k,
                }
                parts.append(Part(f"{official}-{k:05d}", "arrays", (task,)))
        return parts
    per_part = max(CHUNK_FILES, SHARD_BYTES // (res * res * 3))
    for official, split in listing.splits.items():
        n = len(split.paths)
        for k, first in enumerate(range(0, n, per_part)):
            end = min(first + per_part, n)
            chunks = tuple(
                {
                    "root": root,
                    "paths": list(split.paths[s : min(s + CHUNK_FILES, end)]),
                    "class_ids": list(split.class_ids[s : min(s + CHUNK_FILES, end)]),
                    "first_index": s,
                    "official": official,
                    "res": res,
                    "splitter": splitter,
                    "resize": resize,
                }
                for s in range(first, end, CHUNK_FILES)
            )
            parts.append(Part(f"{official}-{k:05d}", "files", chunks))
    return parts


def run_in_process(tasks: list[tuple[tuple, str, dict]]) -> Iterator[tuple[tuple, Decoded]]:
    for key, decoder, kwargs in tasks:
        yield key, DECODERS[decoder](**kwargs)


def _decode_task(decoder: str, kwargs: dict) -> Decoded:
    return DECODERS[decoder](**kwargs)


def run_on_ray(tasks: list[tuple[tuple, str, dict]]) -> Iterator[tuple[tuple, Decoded]]:
    """Ray tasks, at most two per cluster CPU in flight so finished chunks never pile up."""
    import ray

    remote = ray.remote(num_cpus=1, max_retries=2)(_decode_task)
    limit = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
    queue, running = list(reversed(tasks)), {}
    while queue or running:
        while queue and len(running) < limit:
            key, decoder, kwargs = queue.pop()
            running[remote.remote(decoder, kwargs)] = key
        ready, _ = ray.wait(list(running), num_returns=1)
        try:
            result = ray.get(ready[0])
        except ray.exceptions.RayTaskError as error:
            if isinstance(error.cause, LayoutError):  # the user's data: one line, no traceback
                raise error.cause from None
            raise
        yield running.pop(ready[0]), result


def ray_is_up() -> bool:
    ray = sys.modules.get("ray")  # never import Ray just to learn it is not running
    return ray is not None and ray.is_initialized()


class Progress:
    """images/s on one line: redrawn on a terminal, a line every 15 s in a log."""

    def __init__(self, title: str, total: int):
        self.title, self.total, self.done, self.skipped = title, total, 0, 0
        self.started = self.shown = time.monotonic()
        self.tty = sys.stderr.isatty()

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else 0
        count = f"{self.done:,}/{self.total:,}" if self.total else f"{self.done:,}"
        until = f", ETA {eta:,.0f} s" if self.total else ""
        return (
            f"ovat: prepare {self.title}: {count} images "
            f"({rate:,.0f} img/s, {self.skipped} skipped{until})"
        )

    def update(self, seen: int, skipped: int) -> None:
        self.done, self.skipped = self.done + seen, self.skipped + skipped
        now = time.monotonic()
        if now - self.shown >= (0.5 if self.tty else 15):
            self.shown = now
            print(("\r" if self.tty else "") + self.line(), end="" if self.tty else "\n",
                  file=sys.stderr, flush=True)  # fmt: skip

    def finish(self) -> float:
        print(("\r" if self.tty else "") + self.line(), file=sys.stderr, flush=True)
        return time.monotonic() - self.started


def merge(results: list[Decoded]) -> dict[str, SplitArrays]:
    merged = {}
    for split in SPLITS:
        pieces = [r.rows[split] for r in results if split in r.rows and len(r.rows[split].images)]
        if pieces:
            merged[split] = SplitArrays(
                np.concatenate([p.images for p in pieces]),
                np.concatenate([p.class_ids for p in pieces]),
                [s for p in pieces for s in p.sources],
                np.concatenate([p.index for p in pieces]),
            )
    return merged


def write_json(path: Path, content: dict) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(content, indent=1, sort_keys=True))
    os.replace(partial, path)


def write_part(staging: Path, part: Part, results: list[Decoded]) -> None:
    splits = merge(results)
    record = {
        "shards": {s: write_split(staging, f"{s}-{part.name}", a) for s, a in splits.items()},
        "counts": {s: len(a.images) for s, a in splits.items()},
        "skipped": [{"path": p, "reason": r} for result in results for p, r in result.skipped],
        "seen": sum(r.seen for r in results),
    }
    write_json(staging / f"part-{part.name}.json", record)  # last: the part is complete


@contextmanager
def locked(folder: Path):
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.with_name(f".{folder.name}.lock"), "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"ovat: waiting for another preparation of {folder.name}", file=sys.stderr)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def reusable(manifest: dict | None, listing: Listing) -> bool:
    """Whether a prepared folder holds `listing`'s files in a format whose shards are right."""
    return (
        manifest is not None
        and manifest.get("checksum") == listing.checksum
        and manifest.get("format", 0) >= OLDEST_RIGHT_FORMAT[listing.decoder]
    )


def staged(folder: Path, plan: dict) -> Path:
    """The partial folder for this plan: kept if it was started with the same plan."""
    staging = folder.with_name(f".{folder.name}.partial")
    plan_path = staging / "plan.json"
    if plan_path.is_file() and json.loads(plan_path.read_text()) == plan:
        return staging
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    write_json(plan_path, plan)
    return staging


def assemble(staging: Path, parts: list[Part]) -> tuple[dict, list[dict], int]:
    splits = {s: {"count": 0, "shards": []} for s in SPLITS}
    skipped, seen = [], 0
    for part in parts:
        record = json.loads((staging / f"part-{part.name}.json").read_text())
        for split, shards in record["shards"].items():
            splits[split]["shards"] += shards
            splits[split]["count"] += record["counts"][split]
        skipped += record["skipped"]
        seen += record["seen"]
    return splits, skipped, seen


def prepare_listing(listing: Listing, folder: Path, settings: dict, side: int = 0) -> Path:
    """Prepare `listing` into `folder` (see the module's docstring); returns the folder."""
    with locked(folder):
        if reusable(read_manifest(folder), listing):
            return folder  # another driver finished it while we waited
        splitter = Splitter(
            settings["protocol"],
            settings["split_seed"],
            "test" in listing.splits,
            len(listing.splits["train"].paths),
        )
        if settings["protocol"] == "random-split" and listing.decoder != "files":
            raise LayoutError(
                f"data.protocol random-split needs one file per image; {listing.root} holds "
                "array batches: use holdout"
            )
        resize = settings.get("resize", "crop")
        parts = plan_parts(listing, settings["resolution"], splitter, side, resize)
        plan = {
            **settings,
            "format": FORMAT_VERSION,
            "checksum": listing.checksum,
            "parts": len(parts),
        }
        staging = staged(folder, plan)
        todo = [p for p in parts if not (staging / f"part-{p.name}.json").is_file()]
        total = sum(len(c.get("paths", ())) for p in todo for c in p.chunks)  # 0: arrays
        progress = Progress(f"{settings['dataset']} {settings['resolution']}px", total)
        if len(todo) < len(parts):
            print(f"ovat: resuming: {len(parts) - len(todo)} of {len(parts)} parts already "
                  f"written in {staging}", file=sys.stderr)  # fmt: skip
        tasks = [((i, j), p.decoder, c) for i, p in enumerate(todo) for j, c in enumerate(p.chunks)]
        runner, engine = (run_on_ray, "ray") if ray_is_up() else (run_in_process, "in-process")
        pending: dict[int, dict[int, Decoded]] = {}
        for (i, j), result in runner(tasks):
            progress.update(result.seen, len(result.skipped))
            pending.setdefault(i, {})[j] = result
            if len(pending[i]) == len(todo[i].chunks):
                write_part(staging, todo[i], [pending[i][k] for k in sorted(pending[i])])
                del pending[i]
        seconds = progress.finish()
        splits, skipped, seen = assemble(staging, parts)
        listed = sum(len(split.paths) for split in listing.splits.values())
        if listing.decoder == "files" and seen != listed:  # each file in exactly one task
            raise RuntimeError(f"prepared {seen} source images of {listed} listed in {staging}")
        empty = [s for s in SPLITS if not splits[s]["count"]]
        if empty:
            raise LayoutError(
                f"no usable images for split {empty[0]} in {listing.root} "
                f"({len(skipped)} skipped; see {staging})"
            )
        manifest = {
            "format": FORMAT_VERSION,
            **settings,
            "source": str(listing.root),
            "checksum": listing.checksum,
            "layout": listing.notes,
            "protocol_detail": splitter.describe(),
            "classes": len(listing.classes),
            "splits": splits,
            "source_images": seen,
            "skipped": skipped,
            "resize_detail": RESIZE_DETAIL[resize],
            "decode": {"engine": engine, "seconds": round(seconds, 2), "parts": len(parts)},
        }
        write_json(staging / MANIFEST, manifest)
        os.remove(staging / "plan.json")
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(staging, folder)
        return folder
