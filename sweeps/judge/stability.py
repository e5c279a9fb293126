"""How far a ranking can be trusted: the probability of each rank from draws of each mean,
which values cannot be told apart from the best, and how many seeds a gap would need.

The group's three runs of one model spread from 0.0124 to 0.0218, wider than every gap in their
table: a rank is a claim about seeds not yet run, and these numbers say how strong it is.
"""

import math
import statistics
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from sweeps.judge.stats import welch_test

RESAMPLES = 4000  # draws of every mean (>= 2,000): P(best) to about +-0.01
SEED = 0  # the draws' own seed: the same sweep always gives the same probabilities
ALPHA = 0.05  # family-wise error rate of the tied-with-best tests (Holm)
POWER = 0.8  # for the seeds-needed estimate
RANGE = 0.95  # the rank range covers this share of the draws


@dataclass(frozen=True)
class Stability:
    p_best: float  # NaN when the value has fewer than 2 finished seeds
    rank_low: int  # the rank range holding 95% of the draws (0 when unknown)
    rank_high: int
    tied_with_best: bool  # not separable from the best by a Holm-corrected Welch test


def posterior_ranks(losses: dict[str, list[float]], draws: int = RESAMPLES) -> np.ndarray:
    """(values, draws) ranks (1 = lowest) of each value's mean drawn from a t distribution:
    mean + s / sqrt(n) * t(n - 1), s the value's own spread (the pooled one for a single seed).
    A bootstrap over three seeds has at most ten distinct means and no tails: it called a
    value best with certainty where Welch's test gave p = 0.06. Ties break at random."""
    rng = np.random.default_rng(SEED)
    names = list(losses)
    pooled, pooled_df = pooled_std(losses), sum(max(len(xs) - 1, 0) for xs in losses.values())
    means = np.empty((len(names), draws))
    for i, name in enumerate(names):
        seeds = np.asarray(losses[name], dtype=float)
        if len(seeds) >= 2:
            spread, df = float(seeds.std(ddof=1)), len(seeds) - 1
        else:
            spread, df = pooled, pooled_df
        if math.isnan(spread) or df == 0:
            means[i] = seeds.mean()
            continue
        means[i] = seeds.mean() + spread / math.sqrt(len(seeds)) * rng.standard_t(df, draws)
    tiebreak = rng.random(means.shape)
    order = np.lexsort((tiebreak, means), axis=0)  # per column: values by mean, then coin
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, len(names) + 1)[:, None], axis=0)
    return ranks


def welch_p(a: list[float], b: list[float]) -> float:
    """Two-sided Welch t-test p-value; 1 when either side cannot be tested (n < 2)."""
    return welch_test(a, b)[0]


def tied_with_best(losses: dict[str, list[float]], alpha: float = ALPHA) -> set[str]:
    """The best value (lowest mean) and every value a Holm-corrected Welch test cannot tell
    apart from it at family-wise level alpha."""
    ranked = sorted(losses, key=lambda v: statistics.fmean(losses[v]))
    best, others = ranked[0], ranked[1:]
    p = sorted((welch_p(losses[best], losses[v]), v) for v in others)
    tied, rejecting = {best}, True
    for i, (p_value, value) in enumerate(p):  # Holm: step down while the tests reject
        rejecting = rejecting and p_value <= alpha / (len(p) - i)
        if not rejecting:
            tied.add(value)
    return tied


def stability(losses: dict[str, list[float]]) -> dict[str, Stability]:
    """Per value with finished seeds: P(best), its 95% rank range and whether it is tied with
    the best. Values with one seed take part in the ranks but get no probability of their own."""
    finished = {v: xs for v, xs in losses.items() if xs}
    if not finished:
        return {}
    ranks = posterior_ranks(finished)
    tied = tied_with_best(finished)
    out = {}
    for i, value in enumerate(finished):
        known = len(finished[value]) >= 2
        low, high = np.quantile(ranks[i], [(1 - RANGE) / 2, (1 + RANGE) / 2])
        out[value] = Stability(
            p_best=float((ranks[i] == 1).mean()) if known else math.nan,
            rank_low=math.floor(low) if known else 0,
            rank_high=math.ceil(high) if known else 0,
            tied_with_best=value in tied,
        )
    return out


def pooled_std(losses: dict[str, list[float]]) -> float:
    """The within-value spread, pooled over values with two or more seeds; NaN without any."""
    groups = [xs for xs in losses.values() if len(xs) >= 2]
    dof = sum(len(xs) - 1 for xs in groups)
    if dof == 0:
        return math.nan
    return math.sqrt(sum(statistics.variance(xs) * (len(xs) - 1) for xs in groups) / dof)


def seeds_needed(gap: float, spread: float, alpha: float = ALPHA, power: float = POWER) -> int:
    """Seeds per value for a two-sided two-sample test to find `gap` with this `power`, given
    a within-value standard deviation `spread` (normal approximation)."""
    if math.isnan(spread) or gap <= 0:
        return 0
    z = scipy_stats.norm.ppf(1 - alpha / 2) + scipy_stats.norm.ppf(power)
    return max(2, math.ceil(2 * (z * spread / gap) ** 2))


def verdict_text(losses: dict[str, list[float]], table: dict[str, Stability]) -> str:
    """The lines under the ranking: the tied set, and what one seed per value can claim."""
    finished = {v: xs for v, xs in losses.items() if xs}
    if not finished:
        return ""
    ranked = sorted(finished, key=lambda v: statistics.fmean(finished[v]))
    tied = [v for v in ranked if table[v].tied_with_best]
    lines = []
    if len(tied) > 1:
        lines.append(
            f"Tied with the best (Welch tests against {ranked[0]}, Holm-corrected at "
            f"{ALPHA:.0%}): {', '.join(tied)}."
        )
    elif len(ranked) > 1:
        lines.append(
            f"{ranked[0]} is best beyond the noise of every other value (Holm, {ALPHA:.0%})."
        )
    if len(ranked) > 1 and min(len(xs) for xs in finished.values()) < 2:
        gap = statistics.fmean(finished[ranked[1]]) - statistics.fmean(finished[ranked[0]])
        spread = pooled_std(finished)
        need = seeds_needed(gap, spread)
        if need:
            advice = (
                f"the pooled spread between seeds ({spread:.4f}) suggests about {need} seeds per "
                f"value to tell a gap of {gap:.4f} (first to second) from noise"
            )
        else:
            advice = "no spread between seeds is measured yet: rerun with SEEDS=3 to measure it"
        lines.append(f"Values with one seed: no rank among them can be trusted; {advice}.")
    return "\n".join(lines)
