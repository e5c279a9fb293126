"""What a sweep will cost before it runs: each trial's wall time from a training rate, the
sweep's wall time at its concurrency, and device-hours (GPU-hours, or core-hours on CPU).

A trial's time is its start-up plus, each epoch, its train images at the training rate and its
val and test images at EVAL_SPEEDUP times that rate (scoring is a forward pass only). Where the
rate comes from (earlier trials, a calibration, the FLOPs count) is the estimate's `source`.
"""

import heapq
import re
from dataclasses import dataclass

from trainers.config import ConfigError

EVAL_SPEEDUP = 3.0  # images/s scoring against training: a forward pass of three (forward, backward)
HOURS_FORMS = "a number of trials (BUDGET=60) or device-hours (BUDGET=2h)"


@dataclass(frozen=True)
class Rate:
    """A trial's training speed and start-up, and where they were measured."""

    images_per_s: float
    startup_s: float
    source: str  # "history", "calibration" or "FLOPs"
    detail: str = ""


@dataclass(frozen=True)
class TrialCost:
    key: str
    seconds: float  # wall time, start-up included
    devices: float  # GPUs it holds, or CPU cores where it trains on CPU
    source: str


def trial_seconds(rate: Rate, epochs: int, train_images: int, eval_images: int) -> float:
    per_epoch = train_images / rate.images_per_s + eval_images / (EVAL_SPEEDUP * rate.images_per_s)
    return rate.startup_s + epochs * per_epoch


def wall_seconds(costs: list[TrialCost], at_once: int) -> float:
    """Trials started in plan order whenever one of `at_once` slots frees (as Tune does)."""
    slots = [0.0] * max(at_once, 1)
    for cost in costs:
        heapq.heappush(slots, heapq.heappop(slots) + cost.seconds)
    return max(slots)


def device_hours(costs: list[TrialCost]) -> float:
    return sum(c.seconds * c.devices for c in costs) / 3600


@dataclass(frozen=True)
class SweepCost:
    trials: tuple[TrialCost, ...]
    at_once: int
    unit: str  # "GPU" or "core"

    @property
    def wall_s(self) -> float:
        return wall_seconds(list(self.trials), self.at_once)

    @property
    def device_hours(self) -> float:
        return device_hours(list(self.trials))

    @property
    def sources(self) -> str:
        counts: dict[str, int] = {}
        for trial in self.trials:
            counts[trial.source] = counts.get(trial.source, 0) + 1
        return ", ".join(f"{source} ({n} trials)" for source, n in counts.items())


def duration(seconds: float) -> str:
    """47s, 6m05s, 1h02m, 3d04h."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


@dataclass(frozen=True)
class Budget:
    """BUDGET=: trials, or device-hours (0 of either: none given)."""

    trials: int = 0
    hours: float = 0.0


def parse_budget(text: str | None) -> Budget:
    if text in (None, ""):
        return Budget()
    text = text.strip()
    hours = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(?:h|hours?)", text)
    if hours and float(hours[1]) > 0:
        return Budget(hours=float(hours[1]))
    if re.fullmatch(r"\d+", text) and int(text) >= 1:
        return Budget(trials=int(text))
    raise ConfigError(f"BUDGET={text!r} is not a budget; give {HOURS_FORMS}, above 0")


def parse_gap(text: str | None) -> float:
    """GAP=: a difference in test loss (0: none given)."""
    if text in (None, ""):
        return 0.0
    try:
        gap = float(text)
    except ValueError:
        gap = -1.0
    if not gap > 0:
        raise ConfigError(
            f"GAP={text!r} is not a difference in test loss; give one above 0 (GAP=0.001)"
        )
    return gap
