"""Rank stability against cases whose answers are known."""

import math

import numpy as np
import pytest

from sweeps.judge.stability import (
    pooled_std,
    posterior_ranks,
    seeds_needed,
    stability,
    tied_with_best,
    verdict_text,
    welch_p,
)


def test_identical_values_have_uniform_rank_probabilities():
    same = [0.020, 0.021, 0.022]
    table = stability({"a": same, "b": same, "c": same})
    for value in "abc":
        assert table[value].p_best == pytest.approx(1 / 3, abs=0.03)
        assert (table[value].rank_low, table[value].rank_high) == (1, 3)
    assert all(row.tied_with_best for row in table.values())


def test_well_separated_values_have_certain_ranks():
    table = stability({"low": [0.010, 0.011, 0.012], "high": [0.050, 0.051, 0.052]})
    # three seeds leave t(2) tails: certain up to the draws' heavy tails, not exactly 1
    assert table["low"].p_best > 0.995 and table["high"].p_best < 0.005
    assert (table["low"].rank_low, table["low"].rank_high) == (1, 1)
    assert not table["high"].tied_with_best and table["low"].tied_with_best


def test_the_draws_are_seeded_and_rank_every_value_in_every_draw():
    losses = {"a": [0.02, 0.03], "b": [0.025, 0.026], "one": [0.024]}
    first, again = posterior_ranks(losses, 2000), posterior_ranks(losses, 2000)
    assert (first == again).all() and first.shape == (3, 2000)
    assert (np.sort(first, axis=0) == np.arange(1, 4)[:, None]).all()  # a permutation each
    assert len(set(first[2])) == 3  # a single seed's mean is drawn with the pooled spread


def test_three_seeds_a_welch_test_cannot_separate_get_no_certain_rank():
    # The bootstrap over three seeds gave a P(best) of 1.00 and rank range 1-1 here, while
    # Welch's p = 0.062 left both values tied with the best: the four signals disagreed.
    a, b = [0.010, 0.011, 0.012], [0.0121, 0.0131, 0.0141]
    assert welch_p(a, b) == pytest.approx(0.062, abs=1e-3)
    table = stability({"a": a, "b": b})
    assert table["a"].tied_with_best and table["b"].tied_with_best
    assert 0.5 < table["a"].p_best < 0.975 and table["b"].p_best > 0.025
    assert (table["a"].rank_low, table["a"].rank_high) == (1, 2)
    assert (table["b"].rank_low, table["b"].rank_high) == (1, 2)


def test_holm_keeps_in_the_tied_set_what_one_test_at_5_percent_would_drop():
    # c differs from the best with p = 0.035, below 5%. Alone beside a far value b, c's test is
    # Holm's last step (5% / 1) and rejects. With a twin of the best (p = 1) among the tests,
    # c's test comes second of three, at 5% / 2 = 2.5%, and c stays tied with the best.
    a, c = [1.0, 1.2, 1.4, 1.1], [1.35, 1.5, 1.55, 1.45]
    assert welch_p(a, c) == pytest.approx(0.0348, abs=1e-3)
    far = [3.0, 3.1, 3.2, 3.3]
    assert tied_with_best({"a": a, "b": far, "c": c}) == {"a"}
    assert tied_with_best({"a": a, "b": far, "c": c, "twin": list(a)}) == {"a", "c", "twin"}


def test_one_seed_per_value_is_said_plainly_with_the_seeds_a_gap_needs():
    one_seed = {"a": [0.020], "b": [0.024]}
    assert math.isnan(stability(one_seed)["a"].p_best)
    text = verdict_text(one_seed, stability(one_seed))
    assert "no rank among them can be trusted" in text and "SEEDS=3" in text
    mixed = {"a": [0.020, 0.022], "b": [0.024], "c": [0.030, 0.034]}
    text = verdict_text(mixed, stability(mixed))
    spread = pooled_std(mixed)
    assert spread == pytest.approx(math.sqrt((0.002**2 / 2 + 0.004**2 / 2) / 2))
    assert f"about {seeds_needed(0.003, spread)} seeds per value" in text


def test_the_seeds_needed_grow_with_the_spread_over_the_gap():
    assert seeds_needed(0.01, 0.01) == 16  # 2 (1.96 + 0.84)^2 = 15.7
    assert seeds_needed(0.01, 0.02) > seeds_needed(0.01, 0.01)
    assert seeds_needed(0.01, math.nan) == 0
