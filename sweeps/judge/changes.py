"""What changed between two sweeps, value by value: the change in each mean with its interval,
paired seed by seed where both sweeps ran the same seeds, else Welch's. Pure: the sweeps arrive
as objects with `sweep_id`, `losses(value)` and `trial_tag(value, tag)` (sweeps.publish.records).
"""

import math
import statistics
from dataclasses import dataclass
from typing import Protocol

from sweeps.judge import stats
from trainers import keys

CONFIDENCE = stats.CONFIDENCE


class Sweep(Protocol):
    """One side of a diff, as sweeps.publish.records.Sweep reads it from MLflow."""

    sweep_id: str

    def losses(self, value: str) -> dict[int, float]: ...

    def trial_tag(self, value: str, tag: str) -> set[str]: ...


def verdict(low: float, high: float) -> str:
    if math.isnan(low):
        return "n < 2"
    if high < 0:
        return "lower"
    if low > 0:
        return "higher"
    return "within noise"


@dataclass(frozen=True)
class Change:
    value: str
    mean_a: float
    n_a: int
    mean_b: float
    n_b: int
    change: float  # mean b - mean a; negative: b has the lower test loss
    low: float
    high: float
    test: str  # "paired (k seeds)", "Welch", or "-"
    verdict: str
    architecture: str  # "same" or "changed"


def change_of(value: str, a: Sweep, b: Sweep) -> Change:
    losses_a, losses_b = a.losses(value), b.losses(value)
    mean = lambda xs: statistics.fmean(xs.values()) if xs else math.nan
    architecture = (
        "same"
        if a.trial_tag(value, keys.FINGERPRINT) == b.trial_tag(value, keys.FINGERPRINT)
        else "changed"
    )
    if not losses_a or not losses_b:
        change, low, high, test = mean(losses_b) - mean(losses_a), math.nan, math.nan, "-"
    elif len(set(losses_a) & set(losses_b)) >= 2:
        change, low, high, seeds = stats.paired_interval(losses_a, losses_b)
        test = f"paired ({seeds} seeds)"
    else:
        versus = stats.compare(list(losses_b.values()), list(losses_a.values()), False)
        change, low, high, test = versus.difference, versus.low, versus.high, "Welch"
    return Change(
        value,
        mean(losses_a),
        len(losses_a),
        mean(losses_b),
        len(losses_b),
        change,
        low,
        high,
        test,
        verdict(low, high) if test != "-" else "-",
        architecture,
    )


def _num(x: float, signed: bool = False) -> str:
    return "–" if math.isnan(x) else (f"{x:+.4f}" if signed else f"{x:.4f}")


def to_markdown(a: Sweep, b: Sweep, changes: list[Change], found: list[str]) -> str:
    lines = [
        f"### {a.sweep_id} -> {b.sweep_id}: change in test loss",
        "",
        "| value | A mean (n) | B mean (n) | Δ B - A [95% CI] | test | verdict | architecture |",
        "|---|---:|---:|---|---|---|---|",
    ]
    for c in changes:
        interval = "" if math.isnan(c.low) else f" [{c.low:+.4f}, {c.high:+.4f}]"
        lines.append(
            f"| {c.value} | {_num(c.mean_a)} ({c.n_a}) | {_num(c.mean_b)} ({c.n_b}) | "
            f"{_num(c.change, signed=True)}{interval} | {c.test} | {c.verdict} | {c.architecture} |"
        )
    lines += [
        "",
        (
            "Δ: with two or more seeds that both sweeps ran (paired (k seeds)), the mean of the "
            "per-seed changes B - A over those k seeds, which differs from the printed means' "
            "difference when either sweep ran other seeds too; otherwise B's mean minus A's, "
            "with Welch's t. lower / higher: the interval excludes 0."
        ),
        "",
        "What differs between A and B:",
        "",
        *(
            [f"- {line}" for line in found]
            or ["- nothing recorded: same config, code, data and versions"]
        ),
        "",
    ]
    return "\n".join(lines)
