"""Run until decided: which values need another seed, as a race (Birattari et al., "A racing
algorithm for configuring metaheuristics", GECCO 2002; irace's ablation, Lopez-Ibanez et al.
2016) whose tests stay valid however often they look.

Every value starts with `min_seeds` seeds. After each round (every value still racing has
one more seed) each pair of racing values is compared by Welch's t-test; a pair is rejected
when its p-value falls below the nominal level of a group-sequential design
(sweeps.judge.boundaries) at that round, with the family-wise level shared over all pairs as
Holm's step-down does, the level of a rejected pair passed on to the others (Maurer and Bretz,
Statistics in Biopharmaceutical Research 2013). A value shown worse than another is
`separated` and gets no more seeds; a value left alone is `best`; values still racing at
`max_seeds` are `tied with best`; a budget that cannot pay for the next whole round leaves them
`undecided at budget`.

The decisions are a function of the results alone, replayed round by round from seed 0: the
order in which trials finished, a resumed driver or `make rank` on another machine give the same
decisions. A seed beyond a value's counted seeds (run speculatively while a round waited) is
kept and shown, never counted.
"""

import math
from dataclasses import dataclass, field
from itertools import combinations

from scipy import special

from sweeps.judge.boundaries import GAMMA, nominal_levels
from sweeps.judge.stats import moments, welch_test

ALPHA = 0.05
SEPARATED, BEST, TIED, AT_BUDGET, FAILED = (
    "separated",
    "best",
    "tied with best",
    "undecided at budget",
    "failed",
)


@dataclass(frozen=True)
class Rule:
    """The adaptive design: the seeds every value gets, the most any gets, the budget in
    trials (0: none) and the family-wise error rate over all pairs."""

    min_seeds: int = 3
    max_seeds: int = 10
    budget: int = 0
    alpha: float = ALPHA
    gamma: float = GAMMA

    def __post_init__(self):
        if not 2 <= self.min_seeds <= self.max_seeds:
            raise ValueError(
                f"need 2 <= MIN_SEEDS <= MAX_SEEDS, got {self.min_seeds} and {self.max_seeds}"
            )

    def fractions(self) -> tuple[float, ...]:
        return tuple(n / self.max_seeds for n in range(self.min_seeds, self.max_seeds + 1))

    def levels(self, alpha: float) -> tuple[float, ...]:
        return nominal_levels(self.fractions(), round(alpha, 12), self.gamma)

    def most_trials(self, values: int) -> int:
        full = values * self.max_seeds
        return min(full, self.budget) if self.budget else full

    def least_trials(self, values: int) -> int:
        return values * self.min_seeds


@dataclass(frozen=True)
class Rejection:
    seeds: int  # the round at which the pair was rejected
    worse: str  # the value with the higher mean there


@dataclass
class Race:
    """The state of the race after replaying the results: each value's decision and counted
    seeds, the rejected pairs, and what the race needs next."""

    values: list[str]
    rule: Rule
    decision: dict[str, str] = field(default_factory=dict)
    decided_at: dict[str, int] = field(default_factory=dict)  # seeds when decided
    counted: dict[str, int] = field(default_factory=dict)  # seeds the rule counts per value
    rejected: dict[tuple[str, str], Rejection] = field(default_factory=dict)
    needed: list[tuple[str, int]] = field(default_factory=list)  # (value, seed) to run now
    round: int = 0  # the round being filled (seeds per racing value), 0 when finished
    finished: bool = False
    looks: dict[tuple[str, str], int] = field(default_factory=dict)  # tests run per pair
    share: float = 0.0  # the family-wise alpha each open pair has at the end (Holm)
    paired: set[tuple[str, str]] = field(default_factory=set)  # pairs tested seed by seed

    def rejection(self, a: str, b: str) -> Rejection | None:
        return self.rejected.get((a, b)) or self.rejected.get((b, a))

    def level(self, a: str, b: str) -> float:
        """The nominal p-value level of the pair's last test: its interval at 1 - level
        excludes 0 exactly when that test rejects."""
        looks = self.looks.get((a, b)) or self.looks.get((b, a)) or 0
        if not looks:
            return math.nan
        return self.rule.levels(self.share or self.rule.alpha)[looks - 1]

    @property
    def racing(self) -> list[str]:
        return [v for v in self.values if v not in self.decision]

    def spent(self) -> int:
        """Trials the rule counts so far (whole rounds only)."""
        return sum(self.counted.values())

    def speculative(self) -> list[tuple[str, int]]:
        """Seeds of the next round that may start while this one waits: each racing value's
        next seed, where the budget pays for the next whole round even if nobody is decided."""
        if self.finished or self.round >= self.rule.max_seeds:
            return []
        racing = self.racing
        through_next = self.spent_through(self.round) + len(racing)
        if self.rule.budget and through_next > self.rule.budget:
            return []
        return [(v, self.round) for v in racing]

    def spent_through(self, seeds: int) -> int:
        """Trials counted once every racing value has `seeds` seeds."""
        return sum(self.counted[v] for v in self.decision) + seeds * len(self.racing)


def shared_architecture(prints: dict[str, set[str]]) -> dict[str, str]:
    """value -> the one fingerprint all its trials share ("" where they differ): the
    `architecture` replay pairs by."""
    return {v: next(iter(p)) if len(p) == 1 else "" for v, p in prints.items()}


def finite(results: dict[int, float], seeds: int) -> list[float]:
    return [x for s, x in sorted(results.items()) if s < seeds and not math.isnan(x)]


def replay(
    values: list[str],
    results: dict[str, dict[int, float]],
    rule: Rule,
    architecture: dict[str, str] | None = None,
) -> Race:
    """The race from its results: value -> seed -> test loss (NaN: the trial failed). Two
    values with the same `architecture` (the trials' fingerprint) start every seed from the
    same weights, so their losses move together seed by seed: they are compared by a paired
    t-test on the per-seed differences, other pairs by Welch's."""
    race = Race(list(values), rule)
    architecture = architecture or {}
    race.paired = {
        (a, b)
        for a, b in combinations(values, 2)
        if architecture.get(a) and architecture.get(a) == architecture.get(b)
    }
    pairs = list(combinations(values, 2))
    history: dict[tuple[str, str], list[tuple[float, float]]] = {p: [] for p in pairs}
    for seeds in range(rule.min_seeds, rule.max_seeds + 1):
        racing = race.racing
        if rule.budget and race.spent_through(seeds) > rule.budget:
            for value in racing:
                decide(race, value, AT_BUDGET, race.counted.get(value, 0))
            break
        race.round = seeds
        missing = [
            (v, s) for s in range(seeds) for v in racing if s not in results.get(v, {})
        ]  # seed-major: lower seeds first, every value alike
        if missing:
            race.needed = missing  # the race waits for these before it can look again
            break
        for value in racing:
            race.counted[value] = seeds
        for a, b in combinations(racing, 2):
            if (a, b) in race.paired:
                outcome = paired_test(results[a], results[b], seeds)
            else:
                outcome = welch_test(finite(results[a], seeds), finite(results[b], seeds))
            history[(a, b)].append(outcome)
        reject(race, history)
        for value in racing:
            if not finite(results[value], seeds):
                decide(race, value, FAILED, seeds)
            elif any(r.worse == value for p, r in race.rejected.items() if value in p):
                decide(race, value, SEPARATED, seeds)
        left = race.racing
        if len(left) == 1 and len(values) > 1:
            decide(race, left[0], BEST, seeds)
        elif left and seeds == rule.max_seeds:
            for value in left:
                decide(race, value, TIED, seeds)
        if not race.racing:
            break
    race.looks = {p: len(h) for p, h in history.items() if h}
    if not race.needed:
        race.finished, race.round = True, 0
    return race


def decide(race: Race, value: str, decision: str, seeds: int) -> None:
    race.decision[value] = decision
    race.decided_at[value] = seeds
    race.counted.setdefault(value, seeds)


def paired_test(a: dict[int, float], b: dict[int, float], seeds: int) -> tuple[float, float]:
    """(two-sided paired t-test p-value, mean difference) over the seeds both finished."""
    differences = [
        a[s] - b[s]
        for s in range(seeds)
        if s in a and s in b and not math.isnan(a[s]) and not math.isnan(b[s])
    ]
    if len(differences) < 2:
        return 1.0, 0.0
    mean, variance = moments(differences)
    if variance == 0:
        return (0.0 if mean != 0 else 1.0), mean
    t = mean / math.sqrt(variance)
    return float(2 * special.stdtr(len(differences) - 1, -abs(t))), mean


def reject(race: Race, history: dict) -> None:
    """Holm's step-down over all pairs, each a group-sequential test: every open pair gets
    alpha / (open pairs); a pair whose p-value at any of its looks so far is under that look's
    level is rejected, and the others are tested again at the larger share."""
    while True:
        open_pairs = [p for p in history if p not in race.rejected]
        if not open_pairs:
            return
        race.share = race.rule.alpha / len(open_pairs)
        levels = race.rule.levels(race.share)
        new = False
        for pair in open_pairs:
            for look, (p, difference) in enumerate(history[pair]):
                if p <= levels[look] and difference != 0:
                    worse = pair[0] if difference > 0 else pair[1]
                    race.rejected[pair] = Rejection(race.rule.min_seeds + look, worse)
                    new = True
                    break
        if not new:
            return
