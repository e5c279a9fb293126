"""How long a sweep waits for what it does not control, from the environment: read with the
sweep's other input before Ray starts, so that a bad value is one line naming the variable and
its valid values, never a traceback inside Tune's loop halfway through a sweep."""

import math
import os
from dataclasses import dataclass

from trainers.config import ConfigError

# variable -> (field, default seconds)
VARIABLES = {
    "OVAT_WATCHDOG_FLOOR_S": ("watchdog_floor_s", 600.0),  # the least silence that ends a trial
    "OVAT_WATCHDOG_CHECK_S": ("watchdog_check_s", 15.0),  # the actor table is read this often
    "OVAT_TRACKING_WAIT_S": ("tracking_wait_s", 600.0),  # the end of a sweep waits for the store
}


@dataclass(frozen=True)
class Waits:
    watchdog_floor_s: float
    watchdog_check_s: float
    tracking_wait_s: float


def seconds(variable: str, default: float) -> float:
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(
            f"{variable}={raw!r} is not a number of seconds above 0 (unset: {default:g})"
        )
    return value


def waits() -> Waits:
    """The environment's waits; ConfigError names the first bad variable."""
    return Waits(**{field: seconds(name, default) for name, (field, default) in VARIABLES.items()})


WRITERS_VARIABLE = "OVAT_TRACKING_WRITERS"


def tracking_writers(uri: str) -> int:
    """How many writes the outbox delivers at once: OVAT_TRACKING_WRITERS, else 8 to a tracking
    server (each request waits tens of milliseconds on the server; one at a time, a driver
    delivered 8 results/s to a PostgreSQL-backed server, docs/cluster.md) and 1 to a local
    store (SQLite takes one writer at a time)."""
    raw = os.environ.get(WRITERS_VARIABLE, "").strip()
    if not raw:
        return 8 if uri.startswith(("http://", "https://")) else 1
    if not (raw.isdigit() and 1 <= int(raw) <= 64):
        raise ConfigError(f"{WRITERS_VARIABLE}={raw!r} is not a whole number from 1 to 64")
    return int(raw)
