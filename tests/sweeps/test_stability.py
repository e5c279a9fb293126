"""Rank stability against cases whose answers are known."""

import math

import pytest

from sweeps.judge.stability import (
    bootstrap_ranks,
    pooled_std,
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
    assert table["low"].p_best == 1.0 and table["high"].p_best == 0.0
    assert (table["low"].rank_low, table["low"].rank_high) == (1, 1)
    assert not table["high"].tied_with_best and table["low"].tied_with_best


def test_the_bootstrap_is_seeded_and_counts_every_resample():
    losses = {"a": [0.02, 0.03], "b": [0.025, 0.026]}
    first, again = bootstrap_ranks(losses, 2000), bootstrap_ranks(losses, 2000)
    assert (first == again).all() and first.shape == (2, 2000)
    assert sorted(set(first[:, 0])) == [1, 2]  # a permutation of ranks in every resample


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
