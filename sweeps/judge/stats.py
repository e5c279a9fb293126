"""Is a difference to the baseline larger than the seed-to-seed noise? Welch's t interval.

Welch's interval does not assume equal variances, which matters here: one setting can be far
noisier than another (the group's three vqvae runs spread 0.0124 to 0.0218).
"""

import math
import statistics
from dataclasses import dataclass

from scipy import stats as scipy_stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Comparison:
    difference: float  # mean(value) - mean(baseline); negative = lower loss = better
    low: float  # confidence interval of the difference; NaN when n < 2 on either side
    high: float
    verdict: str  # "better", "worse", "within noise", "baseline", or "n < 2"


def welch_interval(values: list[float], baseline: list[float], confidence: float = CONFIDENCE):
    """(difference, low, high) of mean(values) - mean(baseline) by Welch's t."""
    difference = statistics.fmean(values) - statistics.fmean(baseline)
    if len(values) < 2 or len(baseline) < 2:
        return difference, math.nan, math.nan
    va, vb = (
        statistics.variance(values) / len(values),
        statistics.variance(baseline) / len(baseline),
    )
    se = math.sqrt(va + vb)
    if se == 0:
        return difference, difference, difference
    df = (va + vb) ** 2 / (va**2 / (len(values) - 1) + vb**2 / (len(baseline) - 1))
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, df)) * se
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
