"""The racing rule's error rates and cost, measured by simulating sweeps (no Ray, no training):
each value's test losses drawn from a normal distribution with its own mean and spread, and the
rule replayed on them exactly as a real sweep replays it.

`python -m sweeps.judge.simulate` prints the table that docs/ranking.md quotes.
"""

import argparse
import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from sweeps.judge.racing import AT_BUDGET, BEST, SEPARATED, Rule, replay

SWEEPS = 2000  # simulated sweeps per scenario: Monte Carlo error about 0.5% at 5%
SEED = 0
POWER = 0.8
SHARED = 0.9  # the share of a seed's variance that values of one architecture have in common


def pairs(values: int) -> int:
    return values * (values - 1) // 2


def fixed_power(gap: float, seeds: int, level: float) -> float:
    """Power of a two-sided two-sample t-test (equal spreads of 1, `seeds` per side)."""
    df = 2 * seeds - 2
    critical = stats.t.isf(level / 2, df)
    shift = gap * math.sqrt(seeds / 2)
    lower = float(np.nan_to_num(stats.nct.cdf(-critical, df, shift)))  # NaN far in the tail
    return float(stats.nct.sf(critical, df, shift)) + lower


def detectable_gap(seeds: int, values: int, alpha: float = 0.05, power: float = POWER) -> float:
    """The gap, in standard deviations of one seed's loss, that a fixed design of `seeds` per
    value finds with `power` in one comparison, at the Bonferroni share alpha / pairs (Holm's
    first step, the level every comparison must meet when all differences are real)."""
    level = alpha / pairs(values)
    return float(optimize.brentq(lambda g: fixed_power(g, seeds, level) - power, 0.01, 8))


@dataclass(frozen=True)
class Outcome:
    any_separated: float  # share of sweeps that declared any difference
    found: float  # share where the first value was separated from the second (its first rival)
    best: float  # share where the first value was declared the single best
    trials: float  # mean trials the rule counted
    trials_run: float  # at most this many started: speculative seeds (one round ahead) included


def simulate(
    means,
    spreads,
    rule: Rule,
    sweeps: int = SWEEPS,
    seed: int = SEED,
    shared: float = 0.0,
) -> Outcome:
    """Replay the rule on `sweeps` simulated sweeps of len(means) values. With `shared` > 0
    the values are one architecture (paired tests) whose seeds share that part of the
    variance (the same initial weights seed by seed)."""
    rng = np.random.default_rng(seed)
    names = [f"v{i}" for i in range(len(means))]
    architecture = dict.fromkeys(names, "one") if shared else {}
    any_sep = found = best = trials = run = 0
    for _ in range(sweeps):
        own = rng.normal(size=(rule.max_seeds, len(means)))
        common = rng.normal(size=(rule.max_seeds, 1))
        noise = math.sqrt(shared) * common + math.sqrt(1 - shared) * own
        draws = np.asarray(means) + np.asarray(spreads) * noise
        results = {v: dict(enumerate(draws[:, i].tolist())) for i, v in enumerate(names)}
        race = replay(names, results, rule, architecture)
        any_sep += any(d == SEPARATED for d in race.decision.values())
        rival = race.rejected.get((names[0], names[1]))
        found += rival is not None and rival.worse == names[1]
        best += race.decision.get(names[0]) == BEST
        trials += race.spent()
        run += race.spent() + sum(
            1 for v in names if race.decision[v] != AT_BUDGET and race.counted[v] < rule.max_seeds
        )
    return Outcome(any_sep / sweeps, found / sweeps, best / sweeps, trials / sweeps, run / sweeps)


def monte_carlo_error(share: float, sweeps: int = SWEEPS) -> float:
    return math.sqrt(max(share * (1 - share), 1e-12) / sweeps)


def fixed_seeds_for(found: float, values: int, rule: Rule, gap: float) -> int:
    """The fewest seeds per value with which a fixed design (Bonferroni share) finds `gap`
    at least as often as the rule did."""
    level = rule.alpha / pairs(values)
    for seeds in range(2, 200):
        if fixed_power(gap, seeds, level) >= found:
            return seeds
    return 200


# A real sweep's seven values: `make sweep ABLATION=bottleneck SEEDS=3` (32 px, 2 epochs), the
# means and spreads of the README's table at commit c517320.
README_SWEEP = {
    "identity": (0.0254, 0.0009),
    "smvq": (0.0267, 0.0010),
    "amvq": (0.0278, 0.0013),
    "ffn": (0.0288, 0.0022),
    "llmffn": (0.0295, 0.0011),
    "softvq": (0.0300, 0.0016),
    "vq": (0.0630, 0.0102),
}


def report(rule: Rule, sweeps: int = SWEEPS) -> str:
    """The Markdown table docs/ranking.md quotes."""
    values = 5
    gap = detectable_gap(rule.max_seeds, values, rule.alpha)
    paired = f"one architecture (paired), seeds sharing {SHARED:.0%}"
    scenarios = [  # name, means, spreads, shared share of a seed's variance
        ("5 values, identical, equal spreads", [0.0] * 5, [1.0] * 5, 0.0),
        ("5 values, identical, spreads 0.25 to 4", [0.0] * 5, [0.25, 0.5, 1.0, 2.0, 4.0], 0.0),
        (f"5 values, one better by {gap:.2f} sd", [-gap, 0, 0, 0, 0], [1.0] * 5, 0.0),
        (f"{paired}: identical", [0.0] * 5, [1.0] * 5, SHARED),
        (f"{paired}: one better by 1 sd", [-1.0, 0, 0, 0, 0], [1.0] * 5, SHARED),
    ]
    outcomes = [simulate(m, s, rule, sweeps, shared=shared) for _, m, s, shared in scenarios]
    lines = [
        (
            f"Rule: MIN_SEEDS={rule.min_seeds}, MAX_SEEDS={rule.max_seeds}, family-wise alpha "
            f"{rule.alpha:.0%} over all pairs (Holm), Hwang-Shih-DeCani spending gamma={rule.gamma:g}; "
            f"{sweeps:,} simulated sweeps per row."
        ),
        "",
        (
            f"The gap a fixed design of {rule.max_seeds} seeds per value finds with {POWER:.0%} power "
            f"in one comparison at alpha/{pairs(values)}: {gap:.2f} standard deviations."
        ),
        "",
        (
            "| scenario | any difference declared | better value separated from a rival | declared "
            "best | trials counted (mean) | trials run (mean, at most) | fixed design |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for (name, *_), out in zip(scenarios, outcomes, strict=True):
        lines.append(
            f"| {name} | {out.any_separated:.3f} ± {monte_carlo_error(out.any_separated, sweeps):.3f}"
            f" | {out.found:.3f} | {out.best:.3f} | {out.trials:.1f} | {out.trials_run:.1f} | "
            f"{values * rule.max_seeds} |"
        )
    names = list(README_SWEEP)
    means = [README_SWEEP[v][0] for v in names]
    spreads = [README_SWEEP[v][1] for v in names]
    out = simulate(means, spreads, rule, sweeps)
    lines.append(
        f"| the 7 means and spreads of a SEEDS=3 bottleneck sweep (README at c517320) | – | "
        f"{out.found:.3f} | {out.best:.3f} | "
        f"{out.trials:.1f} | {out.trials_run:.1f} | {len(names) * rule.max_seeds} |"
    )
    found = outcomes[2].found  # the one-better-by-the-gap scenario
    equal = fixed_seeds_for(found, values, rule, gap)
    lines += [
        "",
        (
            f"A fixed design as powerful as the rule at that gap ({found:.3f} in one comparison) needs "
            f"{equal} seeds per value: {values * equal} trials for 5 values, "
            f"{len(names) * equal} for 7."
        ),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--min-seeds", type=int, default=Rule.min_seeds)
    parser.add_argument("--max-seeds", type=int, default=Rule.max_seeds)
    parser.add_argument("--sweeps", type=int, default=SWEEPS)
    args = parser.parse_args(argv)
    print(report(Rule(args.min_seeds, args.max_seeds), args.sweeps))


if __name__ == "__main__":
    main()
