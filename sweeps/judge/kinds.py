"""The probe's three-way split of a spread: the same seed on one hardware kind, the same seed
across kinds, and across seeds; and which of a sweep's gaps the hardware alone could close.

A spread is a range (max - min) of test loss, the measure the group quotes ("three runs of one
model spread from 0.0124 to 0.0218"). Pure: the probe (sweeps.run.probe) reads the runs.
"""

import itertools
import math
import statistics
from collections import Counter
from dataclasses import dataclass

Loss = tuple[str, float]  # (hardware kind, test loss) of one finished run


@dataclass(frozen=True)
class Spreads:
    """Ranges (max - min) of test loss, one per source of variation."""

    within_kind: float  # same seed on one kind: the widest kind's range (0: bit for bit)
    across_kinds: float  # same seed: the range of the kinds' means (NaN with one kind)
    across_seeds: float  # the other seeds and the probed one, on the other seeds' kind
    kinds: dict[str, list[float]]  # hardware kind -> its same-seed losses


def spreads(same_seed: list[Loss], other_seeds: list[Loss]) -> Spreads:
    kinds: dict[str, list[float]] = {}
    for kind, loss in same_seed:
        if math.isfinite(loss):
            kinds.setdefault(kind, []).append(loss)
    ranges = [max(v) - min(v) for v in kinds.values()]
    means = [statistics.fmean(v) for v in kinds.values()]
    others = [(kind, loss) for kind, loss in other_seeds if math.isfinite(loss)]
    seeds = [loss for _, loss in others]
    home = Counter(kind for kind, _ in others).most_common(1)
    if home and home[0][0] in kinds:  # the probed seed, on the kind the other seeds ran on
        seeds.append(statistics.fmean(kinds[home[0][0]]))
    return Spreads(
        max(ranges, default=math.nan),
        max(means) - min(means) if len(means) > 1 else math.nan,
        max(seeds) - min(seeds) if len(seeds) > 1 else math.nan,
        kinds,
    )


def gaps(losses: dict[str, list[float]]) -> list[tuple[str, str, float]]:
    """Adjacent values ranked by mean test loss, and the gap between each pair."""
    ranked = sorted(
        (statistics.fmean(finite), value)
        for value, found in losses.items()
        if (finite := [x for x in found if math.isfinite(x)])
    )
    return [(a, b, mb - ma) for (ma, a), (mb, b) in itertools.pairwise(ranked)]


def to_markdown(found: Spreads, sweep_gaps: list[tuple[str, str, float]] | None = None) -> str:
    """The three-way split of the spread, each kind's reruns, and the gaps it could close."""
    lines = [
        "| hardware kind | same-seed runs | mean test loss | range |",
        "|---|---:|---:|---:|",
    ]
    for name, losses in found.kinds.items():
        lines.append(
            f"| {name} | {len(losses)} | {statistics.fmean(losses):.6f} | "
            f"{max(losses) - min(losses):.3g} |"
        )
    lines += [
        "",
        "| spread of test loss (max - min) | value |",
        "|---|---:|",
        f"| same seed, same kind | {found.within_kind:.3g} |",
        f"| same seed, across kinds | {found.across_kinds:.3g} |",
        f"| across seeds | {found.across_seeds:.3g} |",
    ]
    if len(found.kinds) < 2:
        lines += ["", "One hardware kind was reachable: the spread across kinds is not measured."]
    elif sweep_gaps is not None:
        closed = [(a, b, g) for a, b, g in sweep_gaps if g < found.across_kinds]
        listed = ", ".join(f"{a} vs {b} ({g:.3g})" for a, b, g in closed)
        lines += [
            "",
            f"Gaps of the source sweep smaller than the spread across kinds "
            f"({found.across_kinds:.3g}): {len(closed)} of {len(sweep_gaps)}"
            + (f": {listed}." if closed else "."),
        ]
    return "\n".join(lines) + "\n"
