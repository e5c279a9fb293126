"""Where ovat keeps things on disk; each overridable by environment for clusters and tests."""

import os
from pathlib import Path


def results_dir() -> Path:
    """Ranking tables, Ray storage (checkpoints) and `latest`: OVAT_RESULTS, else ./results."""
    return Path(os.environ.get("OVAT_RESULTS", "results")).resolve()


def data_dir() -> Path:
    """Prepared Parquet shards: OVAT_DATA_DIR, else ./.ovat/data."""
    return Path(os.environ.get("OVAT_DATA_DIR", ".ovat/data")).resolve()
