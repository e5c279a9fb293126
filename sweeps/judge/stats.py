"""Is a difference to the baseline larger than the seed-to-seed noise? Welch's t interval.

Welch's interval does not assume equal variances, which matters here: one setting can be far
noisier than another (the group's three vqvae runs spread 0.0124 to 0.0218).
"""

import math
import statistics
from dataclasses import dataclass

from scipy import special
from scipy import stats as scipy_stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Comparison:
    difference: float  # mean(value) - mean(baseline); negative = lower loss = better
    low: float  # confidence interval of the difference; NaN when n < 2 on either side
    high: float
    verdict: str  # "better", "worse", "within noise", "baseline", or "n < 2"


def moments(xs: list[float]) -> tuple[float, float]:
    """(mean, variance of the mean), n >= 2, in floating point (statistics.variance is exact
    and slow: the racing rule's simulation runs this millions of times)."""
    mean = math.fsum(xs) / len(xs)
    return mean, math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - 1) / len(xs)


def welch(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """(mean(a) - mean(b), its variance, Welch-Satterthwaite degrees of freedom; NaN where the
    variance is 0), both sides n >= 2."""
    (mean_a, va), (mean_b, vb) = moments(a), moments(b)
    if va + vb == 0:
        return mean_a - mean_b, 0.0, math.nan
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return mean_a - mean_b, va + vb, df


def welch_test(a: list[float], b: list[float]) -> tuple[float, float]:
    """(Welch's two-sided p-value, mean(a) - mean(b)); p = 1 where either side has < 2, and
    0 or 1 where neither side varies."""
    if len(a) < 2 or len(b) < 2:
        return 1.0, 0.0
    difference, variance, df = welch(a, b)
    if variance == 0:
        return (0.0 if difference != 0 else 1.0), difference
    t = difference / math.sqrt(variance)
    return float(2 * special.stdtr(df, -abs(t))), difference


def welch_interval(values: list[float], baseline: list[float], confidence: float = CONFIDENCE):
    """(difference, low, high) of mean(values) - mean(baseline) by Welch's t."""
    if len(values) < 2 or len(baseline) < 2:
        return statistics.fmean(values) - statistics.fmean(baseline), math.nan, math.nan
    difference, variance, df = welch(values, baseline)
    if variance == 0:
        return difference, difference, difference
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, df)) * math.sqrt(variance)
    return difference, difference - half, difference + half


def compare(values: list[float], baseline: list[float], is_baseline: bool) -> Comparison:
    if is_baseline:
        return Comparison(0.0, math.nan, math.nan, "baseline")
    if not values or not baseline:
        return Comparison(math.nan, math.nan, math.nan, "–")
    difference, low, high = welch_interval(values, baseline)
    if math.isnan(low):
        verdict = "n < 2"
    elif high < 0:
        verdict = "better"
    elif low > 0:
        verdict = "worse"
    else:
        verdict = "within noise"
    return Comparison(difference, low, high, verdict)


def paired_interval(
    a: dict[int, float], b: dict[int, float], confidence: float = CONFIDENCE
) -> tuple[float, float, float, int]:
    """(mean of b - a over common seeds, low, high, seeds) by a paired t interval."""
    seeds = sorted(set(a) & set(b))
    changes = [b[s] - a[s] for s in seeds]
    mean = statistics.fmean(changes)
    if len(changes) < 2:
        return mean, math.nan, math.nan, len(changes)
    sd = statistics.stdev(changes)
    half = (
        float(scipy_stats.t.ppf(0.5 + confidence / 2, len(changes) - 1))
        * sd
        / math.sqrt(len(changes))
    )
    return mean, mean - half, mean + half, len(changes)
