"""The racing rule (sweeps.judge.racing): its error rates by simulation, its boundaries against
published values, and decisions that depend on results only. No Ray."""

import math
import random

import numpy as np
import pytest

from sweeps.judge.boundaries import spent, z_bounds
from sweeps.judge.racing import AT_BUDGET, BEST, SEPARATED, TIED, Rule, replay
from sweeps.judge.simulate import detectable_gap, monte_carlo_error, simulate

SWEEPS = 2000


def test_one_look_is_the_fixed_test_and_spending_ends_at_alpha():
    assert z_bounds((1.0,), 0.05) == pytest.approx((1.95996,), abs=1e-4)
    assert spent(1.0, 0.05) == pytest.approx(0.05)
    assert spent(0.0, 0.05) == 0.0


def test_boundaries_match_the_published_hwang_shih_decani_design():
    # Jennison and Turnbull's tables / gsDesign: 5 equally spaced looks, gamma = -4, alpha 5%
    bounds = z_bounds(tuple(k / 5 for k in range(1, 6)), 0.05, -4.0)
    assert bounds == pytest.approx((3.253, 2.986, 2.691, 2.374, 2.026), abs=0.005)


def test_a_normal_process_crosses_the_boundaries_with_probability_alpha():
    fractions = tuple(n / 10 for n in range(3, 11))
    bounds = np.array(z_bounds(fractions, 0.05))
    rng = np.random.default_rng(1)
    steps = rng.normal(size=(200_000, len(fractions))) * np.sqrt(np.diff((0.0, *fractions)))
    z = np.cumsum(steps, axis=1) / np.sqrt(fractions)
    crossed = (np.abs(z) >= bounds).any(axis=1).mean()
    assert crossed == pytest.approx(0.05, abs=3 * math.sqrt(0.05 * 0.95 / 200_000))


@pytest.mark.parametrize(
    ("spreads", "shared"),
    [([1.0] * 5, 0.0), ([0.25, 0.5, 1.0, 2.0, 4.0], 0.0), ([1.0] * 5, 0.9)],
    ids=["equal", "unequal", "paired"],
)
def test_identical_values_are_declared_different_in_at_most_alpha_of_sweeps(spreads, shared):
    out = simulate([0.0] * 5, spreads, Rule(3, 10), SWEEPS, seed=11, shared=shared)
    assert out.any_separated <= 0.05 + 2 * monte_carlo_error(0.05, SWEEPS), out


def test_the_gap_a_fixed_design_finds_with_80_percent_power_is_found_in_75_percent():
    gap = detectable_gap(10, 5)
    assert 1.5 < gap < 2.5  # independent seeds: well over one standard deviation
    out = simulate([-gap, 0.0, 0.0, 0.0, 0.0], [1.0] * 5, Rule(3, 10), SWEEPS, seed=12)
    assert out.found >= 0.75, out
    assert out.trials < 50  # it stopped seeds somewhere


def test_an_untrainable_value_is_separated_at_the_first_look_and_twins_never():
    rng = np.random.default_rng(3)
    base = rng.normal(0.03, 0.001, size=10)
    results = {
        "base": dict(enumerate(base)),
        "twin": dict(enumerate(base)),  # the same losses seed by seed
        "lr0": dict(enumerate(rng.normal(0.25, 0.02, size=10))),
    }
    race = replay(list(results), results, Rule(3, 6))
    assert race.decision == {"lr0": SEPARATED, "base": TIED, "twin": TIED}
    assert race.decided_at == {"lr0": 3, "base": 6, "twin": 6}
    assert race.spent() == 3 + 6 + 6


def test_one_clear_winner_is_declared_best_once_every_rival_is_separated():
    results = {v: {s: loss + 0.001 * s for s in range(10)} for v, loss in [("a", 0.1), ("b", 0.5)]}
    race = replay(["a", "b"], results, Rule(3, 10))
    assert race.decision == {"b": SEPARATED, "a": BEST}


def test_a_seed_beyond_the_counted_ones_changes_nothing():
    rng = np.random.default_rng(4)
    results = {v: dict(enumerate(rng.normal(m, 0.01, size=4))) for v, m in [("a", 0), ("b", 1)]}
    decided = replay(
        ["a", "b"],
        {v: {s: x for s, x in r.items() if s < 3} for v, r in results.items()},
        Rule(3, 6),
    )
    extra = replay(["a", "b"], results, Rule(3, 6))  # seed 3 ran speculatively
    assert decided.decision == extra.decision and decided.counted == extra.counted == {
        "a": 3,
        "b": 3,
    }


def test_a_round_waits_for_all_its_seeds_and_names_them():
    results = {"a": {0: 1.0, 1: 1.1, 2: 1.2}, "b": {0: 1.0, 2: 1.3}}
    race = replay(["a", "b"], results, Rule(3, 6))
    assert not race.finished and race.round == 3 and race.needed == [("b", 1)]
    assert race.speculative() == [("a", 3), ("b", 3)]


def test_a_budget_that_cannot_pay_a_whole_round_ends_the_race_undecided():
    results = {v: {s: float(s % 2) for s in range(10)} for v in ("a", "b", "c")}
    race = replay(["a", "b", "c"], results, Rule(3, 10, budget=13))
    assert race.finished and set(race.decision.values()) == {AT_BUDGET}
    assert race.counted == {"a": 4, "b": 4, "c": 4}


def run_race(truth: dict, rule: Rule, slots: int, rng: random.Random) -> tuple:
    """A searcher's life: start what the race needs (or may speculate on) while slots are
    free, and let trials finish in a random order. Returns the race and the trials started."""
    results, running, started = {v: {} for v in truth}, [], set()
    while True:
        race = replay(list(truth), results, rule)
        wanted = [t for t in race.needed + race.speculative() if t not in started]
        while wanted and len(running) < slots:
            trial = wanted.pop(0)
            started.add(trial)
            running.append(trial)
        if not running:
            return race, started
        value, seed = running.pop(rng.randrange(len(running)))
        results[value][seed] = truth[value][seed]


@pytest.mark.parametrize("budget", [0, 20, 31])
def test_any_finishing_order_reaches_the_same_decisions_within_the_budget(budget):
    gen = np.random.default_rng(5)
    truth = {
        v: dict(enumerate(gen.normal(m, s, size=8)))
        for v, m, s in [("a", 0.0, 1.0), ("b", 0.2, 1.0), ("c", 6.0, 1.0), ("d", 0.0, 3.0)]
    }
    rule = Rule(3, 8, budget=budget)
    reference = replay(list(truth), truth, rule)  # every result known at once
    for order in range(6):
        race, started = run_race(truth, rule, slots=1 + order % 3, rng=random.Random(order))
        assert race.decision == reference.decision and race.counted == reference.counted
        if budget:
            assert len(started) <= budget


def test_values_of_one_architecture_are_compared_seed_by_seed():
    # Seed k starts both values from the same weights: the seeds spread widely (0.01) but the
    # difference is a steady 0.002. Welch sees only the spread; the paired test sees the shift.
    start = [0.030, 0.045, 0.020, 0.038, 0.026, 0.041]
    results = {
        "base": dict(enumerate(start)),
        "worse": {s: x + 0.002 + 0.0001 * (s % 2) for s, x in enumerate(start)},
    }
    apart = replay(["base", "worse"], results, Rule(3, 6))
    paired = replay(["base", "worse"], results, Rule(3, 6), {"base": "f1", "worse": "f1"})
    assert apart.decision == {"base": TIED, "worse": TIED} and not apart.paired
    assert paired.decision == {"worse": SEPARATED, "base": BEST}
    assert paired.decided_at["worse"] == 3 and paired.paired == {("base", "worse")}
