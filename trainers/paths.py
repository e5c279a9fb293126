"""Where ovat keeps things on disk; each overridable by environment for clusters and tests."""

import os
import tempfile
from pathlib import Path


class StorageError(OSError):
    """A folder ovat must write to is not writable (permissions, read-only, disk full)."""


def check_writable(folder: Path, what: str) -> Path:
    """Create `folder` and write a file into it now, before any trial can fail on it later."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".ovat-write-check-") as probe:
            probe.write(b"x" * 4096)
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as error:
        raise StorageError(
            f"{what} {folder} is not writable: {error.strerror or error}; "
            f"free space or point {ENV[what]} elsewhere"
        ) from None
    return folder


ENV = {"results folder": "OVAT_RESULTS", "data folder": "OVAT_DATA_DIR"}


def results_dir() -> Path:
    """Ranking tables, Ray storage (checkpoints) and `latest`: OVAT_RESULTS, else ./results."""
    return Path(os.environ.get("OVAT_RESULTS", "results")).resolve()


def data_dir() -> Path:
    """Prepared Parquet shards: OVAT_DATA_DIR, else ./.ovat/data."""
    return Path(os.environ.get("OVAT_DATA_DIR", ".ovat/data")).resolve()
