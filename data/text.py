"""Text as byte windows, for the language-model family: no tokenizer and no download.

- `pysource`: the Python sources of the pinned torch wheel (2,352 files, 49 MB at torch
  2.14.1), the same bytes on every machine that installed ovat.
- `text`: a user's corpus, every file under `data.root`; a file that is binary (holds a NUL
  byte) or is not UTF-8 is listed and skipped, a folder with no usable file is one error.

A file goes to train / val / test (80 / 10 / 10) by the hash of (split seed, its path under the
root), the protocol of the image layouts (`data.splits.unit_hash`): stable across machines and
independent of which other files exist. Each split's files are joined in path order and cut into
non-overlapping windows of context + 1 bytes (positions 0..context-1 predict 1..context); the
tail shorter than a window is dropped. Val and test windows are the fixed evaluation windows:
the same bytes at the same positions for every value and seed.
"""

import hashlib
import importlib.util
from pathlib import Path

import numpy as np

from data.layouts import LayoutError
from data.shards import SplitArrays
from data.splits import unit_hash

SPLIT_SHARES = (("val", 0.1), ("test", 0.1))  # the rest is train
SALT = "text"


def python_sources() -> tuple[Path, list[Path]]:
    """The installed torch package's folder and its .py files, in path order."""
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        raise LayoutError("pysource needs the torch package installed")
    root = Path(spec.origin).parent
    return root, sorted(root.rglob("*.py"))


def folder_files(root: str) -> tuple[Path, list[Path]]:
    """Every regular file under `root` (hidden ones left out), in path order."""
    if not root:
        raise LayoutError("data.dataset text needs ROOT= (data.root): a folder of UTF-8 text files")
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise LayoutError(f"data.root {root!r} is not a folder")
    files = [
        path
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not any(p.startswith(".") for p in path.relative_to(folder).parts)
    ]
    return folder, files


def readable(path: Path) -> tuple[bytes | None, str]:
    """The file's bytes, or None and why it is skipped."""
    data = path.read_bytes()
    if b"\0" in data:
        return None, "binary (holds a NUL byte)"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, f"not UTF-8 (byte {error.start})"
    return data, ""


def split_of(seed: int, key: str) -> str:
    draw, edge = unit_hash(seed, SALT, key), 0.0
    for name, share in SPLIT_SHARES:
        edge += share
        if draw < edge:
            return name
    return "train"


def windows(texts: list[tuple[str, bytes]], context: int) -> SplitArrays:
    """Non-overlapping (N, context + 1) uint8 windows of the joined texts; each labelled with
    the file and offset its first byte comes from."""
    width = context + 1
    joined = b"".join(data for _, data in texts)
    count = len(joined) // width
    starts = np.cumsum([0] + [len(data) for _, data in texts])  # each file's first byte
    offsets = np.arange(count) * width
    owner = np.searchsorted(starts, offsets, side="right") - 1
    array = np.frombuffer(joined, dtype=np.uint8, count=count * width).reshape(count, width)
    labels = [f"{texts[f][0]}@{o - starts[f]}" for f, o in zip(owner, offsets, strict=True)]
    return SplitArrays(array.copy(), owner.astype(np.int64), labels)


def build(root: Path, files: list[Path], context: int, seed: int) -> tuple[dict, dict]:
    """Splits of byte windows, plus the manifest's account of the source (skipped files too)."""
    texts: dict[str, list[tuple[str, bytes]]] = {"train": [], "val": [], "test": []}
    skipped, digest = [], hashlib.sha256()
    for path in files:
        key = path.relative_to(root).as_posix()
        data, why = readable(path)
        if data is None:
            skipped.append({"path": key, "reason": why})
            continue
        digest.update(key.encode() + b"\0" + data)
        texts[split_of(seed, key)].append((key, data))
    if not any(texts.values()):
        listed = "; ".join(f"{entry['path']}: {entry['reason']}" for entry in skipped[:5])
        raise LayoutError(
            f"no UTF-8 text file under {root}: {len(files)} files, {len(skipped)} skipped"
            + (f" ({listed})" if skipped else "")
        )
    splits = {name: windows(parts, context) for name, parts in texts.items()}
    short = [name for name, split in splits.items() if not len(split.images)]
    if short:
        raise LayoutError(
            f"the corpus under {root} is too small: its {', '.join(short)} split holds less "
            f"than one window of {context + 1} bytes (data.context + 1); add text or lower "
            "data.context"
        )
    source = {
        "source": str(root),
        "files": sum(len(parts) for parts in texts.values()),
        "checksum": digest.hexdigest()[:16],
        "skipped": skipped,
        "kind": "text",
        "context": context,
    }
    return splits, source


def listing_checksum(files: list[Path]) -> str:
    """Paths, sizes and modification times: whether a prepared corpus is still current."""
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]
