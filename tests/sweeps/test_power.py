"""The resolution `make plan` prints, checked against simulated sweeps: at the gap it says a
number of seeds detects, that many seeds detect it about 80% of the time."""

import numpy as np
import pytest
from scipy import stats

from sweeps.judge.power import detectable_gap, pooled_spread, power, seeds_for_gap

SIMULATIONS = 4000


def rejection_rate(gap: float, sd: float, seeds: int, alpha: float, rng) -> float:
    """Simulated sweeps: two values `gap` apart, `seeds` seeds each, a t-test at `alpha`."""
    a = rng.normal(0.0, sd, (SIMULATIONS, seeds))
    b = rng.normal(gap, sd, (SIMULATIONS, seeds))
    p = stats.ttest_ind(a, b, axis=1).pvalue
    return float(np.mean(p < alpha))


@pytest.mark.parametrize("seeds, comparisons", [(3, 1), (3, 6), (5, 6), (10, 6)])
def test_the_detectable_gap_is_detected_80_percent_of_the_time(seeds, comparisons):
    rng = np.random.default_rng(seeds * 100 + comparisons)
    sd = 0.0019  # the README sweep's seed spread, in test loss
    gap = detectable_gap(sd, seeds, comparisons)
    rate = rejection_rate(gap, sd, seeds, 0.05 / comparisons, rng)
    # 4,000 simulated sweeps: the rate's standard error is 0.6 points
    assert rate == pytest.approx(0.8, abs=0.025), (gap, rate)
    assert rejection_rate(0.0, sd, seeds, 0.05 / comparisons, rng) <= 0.05 / comparisons + 0.01


def test_more_seeds_resolve_smaller_gaps_and_the_seeds_for_a_gap_are_the_fewest():
    sd = 1.0
    gaps = [detectable_gap(sd, n, 6) for n in (2, 3, 5, 10, 30)]
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 1.0
    needed = seeds_for_gap(sd, 1.0, 6)
    assert power(1.0, sd, needed, 0.05 / 6) >= 0.8 > power(1.0, sd, needed - 1, 0.05 / 6)
    assert detectable_gap(sd, needed, 6) <= 1.0 < detectable_gap(sd, needed - 1, 6)
    assert seeds_for_gap(sd, 1e-6, 6, most=50) is None
    assert detectable_gap(sd, 1, 6) == float("inf")


def test_the_spread_is_pooled_within_values_and_needs_two_seeds_somewhere():
    spread = pooled_spread([[1.0, 3.0], [10.0, 12.0, 14.0], [7.0]], "two values")
    # squares 2 + 8 over 1 + 2 degrees of freedom
    assert spread.df == 3 and spread.sd == pytest.approx((10 / 3) ** 0.5)
    assert pooled_spread([[1.0], [2.0]], "single seeds") is None
