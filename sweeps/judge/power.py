"""What a number of seeds can resolve: the smallest gap in test loss a sweep detects, and the
seeds a given gap needs, from the spread between seeds.

Each value is compared with the baseline by a two-sided two-sample t-test on n seeds a side, at
the family-wise error rate split over the comparisons (Bonferroni: Holm's first, strictest step).
Power is computed exactly (the noncentral t distribution, integrated), not from a normal
approximation (which overstates it at 3 seeds); `tests/sweeps/test_power.py` checks it against simulated
sweeps.
"""

import math
from dataclasses import dataclass

from scipy import integrate, optimize, stats

POWER = 0.8
ALPHA = 0.05


@dataclass(frozen=True)
class Spread:
    """The seed-to-seed standard deviation of test loss, pooled over values, and where from."""

    sd: float
    df: int  # degrees of freedom of the pooled estimate
    source: str  # e.g. "3 earlier sweeps of bottleneck (42 trials)"


def pooled_spread(groups: list[list[float]], source: str) -> Spread | None:
    """The pooled within-group standard deviation; None with no group of two or more."""
    used = [g for g in groups if len(g) >= 2]
    df = sum(len(g) - 1 for g in used)
    if not df:
        return None
    squares = sum(sum((x - sum(g) / len(g)) ** 2 for x in g) for g in used)
    return Spread(math.sqrt(squares / df), df, source)


def power(gap: float, sd: float, seeds: int, alpha: float) -> float:
    """P(a two-sided two-sample t-test at `alpha` rejects) when the true gap is `gap`."""
    df = 2 * seeds - 2
    critical = stats.t.ppf(1 - alpha / 2, df)
    shift = gap / (sd * math.sqrt(2 / seeds))

    # T = (Z + shift) / sqrt(V / df), V ~ chi2(df): integrated over V (scipy's noncentral t
    # returns NaN for some arguments this needs)
    def rejected(v: float) -> float:
        bound = critical * math.sqrt(v / df)
        return (stats.norm.sf(bound - shift) + stats.norm.cdf(-bound - shift)) * stats.chi2.pdf(
            v, df
        )

    return float(integrate.quad(rejected, 0, math.inf, limit=200)[0])


def level(alpha: float, comparisons: int) -> float:
    return alpha / max(comparisons, 1)


def detectable_gap(
    sd: float, seeds: int, comparisons: int, alpha: float = ALPHA, wanted: float = POWER
) -> float:
    """The smallest true gap detected with probability `wanted` by `seeds` seeds a value."""
    if seeds < 2:
        return math.inf  # one seed a value has no spread to test against
    each = level(alpha, comparisons)
    scale = sd * math.sqrt(2 / seeds)
    upper = scale
    while power(upper, sd, seeds, each) < wanted:
        upper *= 2
    return optimize.brentq(lambda g: power(g, sd, seeds, each) - wanted, 0.0, upper, xtol=sd * 1e-6)


def seeds_for_gap(
    sd: float,
    gap: float,
    comparisons: int,
    alpha: float = ALPHA,
    wanted: float = POWER,
    most: int = 1000,
) -> int | None:
    """The fewest seeds a value that detect `gap` with probability `wanted`; None past `most`."""
    each = level(alpha, comparisons)
    for seeds in range(2, most + 1):
        if power(gap, sd, seeds, each) >= wanted:
            return seeds
    return None
