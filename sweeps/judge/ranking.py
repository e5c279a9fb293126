"""The ranking: one row per varied value, seeds pooled, from trial rows read elsewhere.

The spread over seeds sits beside every mean: in the group's history three runs of one model
spread wider than the gaps between models, and a table without the spread misleads.
"""

import math
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, replace

from sweeps.judge import stability, stats
from sweeps.judge.racing import AT_BUDGET, BEST, TIED, Race, Rule, replay, shared_architecture


@dataclass(frozen=True)
class TrialRow:
    value: str
    seed: int
    run_name: str
    status: str
    test_loss: float  # NaN when the trial did not finish
    params_total: int
    params_bottleneck: int
    fingerprint: str = ""  # architecture hash (trainers.audit.fingerprint)
    untrained: str = ""  # trainable tensors that never got a gradient, comma-joined
    frozen_changed: str = ""
    run_id: str = ""
    error: str = ""  # why the trial failed (diverged at epoch k, step s; the exception)
    val_loss: float = math.nan  # the model is chosen on this, and reported on test_loss
    hardware_kind: str = ""  # placement.hardware_kind: what a same-seed rerun repeats on


@dataclass(frozen=True)
class RankRow:
    rank: int
    value: str
    test_loss_mean: float
    test_loss_std: float  # sample std over seeds; NaN with one seed
    test_loss_min: float
    test_loss_max: float
    n: int
    params_total: int
    params_bottleneck: int
    runs: str
    failed: int
    notes: str  # audit warnings and architecture collisions; empty when all is well
    diff_to_baseline: float  # mean - baseline mean; negative is better
    diff_ci_low: float  # Welch 95% interval (a race: its test's level; NaN with n < 2)
    diff_ci_high: float
    verdict: str  # better / worse / within noise / baseline / n < 2
    p_best: float = math.nan  # t draws of each mean: how often this value ranks first
    rank_low: int = 0  # the ranks it takes in 95% of the draws (0: n < 2)
    rank_high: int = 0
    tied_with_best: bool = False  # not separable from the best (Holm-corrected Welch tests)
    val_loss_mean: float = math.nan  # the best value is chosen on this, not on test loss
    decision: str = ""  # SEEDS=auto: separated, best, tied with best, undecided at budget
    decided_at: int = 0  # SEEDS=auto: the seeds it had when decided
    seeds_run: int = 0  # finished seeds, those run speculatively and not counted included
    test_bits_per_byte: float = math.nan  # text: test_loss_mean (nats per byte) / ln 2


def in_bits_per_byte(table: list[RankRow]) -> list[RankRow]:
    """The rows of a byte-level language model's ranking with their mean test loss also in
    bits per byte, the unit text compression is compared in (a mean of nats over ln 2)."""
    return [replace(r, test_bits_per_byte=r.test_loss_mean / math.log(2)) for r in table]


ENDED = ("FINISHED", "FAILED")  # MLflow statuses of trials whose result is final


def finished_losses(group: list[TrialRow]) -> list[float]:
    return [r.test_loss for r in group if not math.isnan(r.test_loss)]


def rank(rows: list[TrialRow], baseline: str = "", rule: Rule | None = None) -> list[RankRow]:
    """Group by value, pool finished seeds, compare each value with the baseline's seeds, and
    sort by mean test loss (values with no finished trial last). With a rule (SEEDS=auto) the
    race is replayed from the rows: each value counts the seeds the race counted, and its
    verdicts are the race's sequential tests."""
    groups: dict[str, list[TrialRow]] = {}
    for row in rows:
        groups.setdefault(row.value, []).append(row)
    race = replay_rows(rows, rule) if rule else None
    counted = {v: counted_rows(g, race, rows) for v, g in groups.items()}
    reference = counted.get(baseline, [])
    trust = stability.stability({value: finished_losses(g) for value, g in counted.items()})
    summaries = []
    for value, group in groups.items():
        used = counted[value]
        losses = finished_losses(used)
        versus = compare(value, used, reference, baseline, race)
        summaries.append(
            {
                "value": value,
                "test_loss_mean": statistics.fmean(losses) if losses else math.nan,
                "test_loss_std": statistics.stdev(losses) if len(losses) > 1 else math.nan,
                "test_loss_min": min(losses, default=math.nan),
                "test_loss_max": max(losses, default=math.nan),
                "n": len(losses),
                "params_total": max(r.params_total for r in group),
                "params_bottleneck": max(r.params_bottleneck for r in group),
                "runs": ", ".join(sorted(r.run_name for r in group)),
                "failed": len(used) - len(losses),
                "notes": notes(value, group, rows),
                "diff_to_baseline": versus.difference,
                "diff_ci_low": versus.low,
                "diff_ci_high": versus.high,
                "verdict": versus.verdict,
                **(asdict(trust[value]) if value in trust else {}),
                "val_loss_mean": mean_of([r.val_loss for r in used if not math.isnan(r.test_loss)]),
                "seeds_run": len(finished_losses(group)),
                **(race_columns(race, value) if race else {}),
            }
        )
    summaries.sort(key=lambda s: (math.isnan(s["test_loss_mean"]), s["test_loss_mean"]))
    return [RankRow(rank=i + 1, **s) for i, s in enumerate(summaries)]


def chosen(table: list[RankRow]) -> RankRow | None:
    """The value a sweep selects: the lowest mean val loss (where it has one), reported on its
    test loss. Selecting on test loss and reporting it would bias the reported score down."""
    finished = [row for row in table if row.n]
    if not finished:
        return None
    return min(finished, key=lambda r: (math.isnan(r.val_loss_mean), r.val_loss_mean, r.rank))


def mean_of(xs: list[float]) -> float:
    finite = [x for x in xs if not math.isnan(x)]
    return statistics.fmean(finite) if finite else math.nan


def first_seed(rows: list[TrialRow]) -> int:
    return min((r.seed for r in rows), default=0)


def replay_rows(rows: list[TrialRow], rule: Rule) -> Race:
    """The race from the trials' rows: finished ones with their loss, failed ones as NaN;
    trials still running or interrupted are not results yet."""
    start = first_seed(rows)
    results: dict[str, dict[int, float]] = {}
    for row in rows:
        results.setdefault(row.value, {})
        if row.status in ENDED:
            results[row.value][row.seed - start] = row.test_loss
    return replay(sorted(results), results, rule, architectures(rows))


def architectures(rows: list[TrialRow]) -> dict[str, str]:
    """value -> the fingerprint all its trials share ("" where they differ)."""
    prints: dict[str, set[str]] = {}
    for row in rows:
        if row.fingerprint:
            prints.setdefault(row.value, set()).add(row.fingerprint)
    return shared_architecture(prints)


def counted_rows(group: list[TrialRow], race: Race | None, rows: list[TrialRow]) -> list:
    """The rows the statistics use: all, or with a race the seeds it counted."""
    if race is None:
        return group
    seeds = race.counted.get(group[0].value, 0)
    start = first_seed(rows)
    return [r for r in group if r.seed - start < seeds and r.status in ENDED]


def compare(
    value: str, used: list[TrialRow], reference: list[TrialRow], baseline: str, race: Race | None
) -> stats.Comparison:
    """The verdict against the baseline: Welch's 95% interval, or with a race the race's own
    test (paired by seed for values of one architecture, else Welch), its interval at the
    level that test used (they agree on whether 0 is inside)."""
    losses, base = finished_losses(used), finished_losses(reference)
    if race is None or value == baseline or not losses or not base:
        return stats.compare(losses, base, is_baseline=value == baseline)
    level = race.level(value, baseline)
    confidence = 1 - level if not math.isnan(level) and level > 0 else stats.CONFIDENCE
    if (value, baseline) in race.paired or (baseline, value) in race.paired:
        difference, low, high, _ = stats.paired_interval(
            by_seed(reference), by_seed(used), confidence
        )
    else:
        difference, low, high = stats.welch_interval(losses, base, confidence)
    rejected = race.rejection(value, baseline)
    if math.isnan(low):
        verdict = "n < 2"
    elif rejected is None:
        verdict = "within noise"
    else:
        verdict = "worse" if rejected.worse == value else "better"
    return stats.Comparison(difference, low, high, verdict)


def by_seed(rows: list[TrialRow]) -> dict[int, float]:
    return {r.seed: r.test_loss for r in rows if not math.isnan(r.test_loss)}


def race_columns(race: Race, value: str) -> dict:
    decision = race.decision.get(value, "racing")
    return {
        "decision": decision,
        "decided_at": race.decided_at.get(value, 0),
        "tied_with_best": decision in (BEST, TIED, AT_BUDGET, "racing"),
    }


def notes(value: str, group: list[TrialRow], rows: list[TrialRow]) -> str:
    """Warnings a reader must see next to the number: untrained tensors, and other values of
    the sweep with this value's exact architecture (the group's ffn runs trained the VQ)."""
    found = [
        f"s{r.seed} failed: {r.error}" for r in sorted(group, key=lambda row: row.seed) if r.error
    ]
    for label, attr in (
        ("never got a gradient", "untrained"),
        ("frozen but changed", "frozen_changed"),
    ):
        names = sorted({n for r in group for n in getattr(r, attr).split(",") if n})
        if names:
            found.append(f"{label}: {', '.join(names)}")
    seeds = [r.seed for r in group]
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        found.append(f"seed {', '.join(map(str, repeated))} pooled more than once")
    prints = {r.fingerprint for r in group if r.fingerprint}
    twins = sorted({r.value for r in rows if r.value != value and r.fingerprint in prints})
    if twins:
        found.append(f"same architecture as {', '.join(twins)}")
    return "; ".join(found)


def trust_text(rows: list[TrialRow], table: list[RankRow], rule: Rule | None = None) -> str:
    """The lines under a table: the tied-with-best set and what one seed can claim, or with a
    race what it decided and what it cost against the fixed design it matches."""
    if rule:
        return race_text(table, rule)
    losses = {r.value: finished_losses([t for t in rows if t.value == r.value]) for r in table}
    trust = {
        r.value: stability.Stability(r.p_best, r.rank_low, r.rank_high, r.tied_with_best)
        for r in table
    }
    return stability.verdict_text(losses, trust)


def kinds_text(rows: list[TrialRow]) -> str:
    """A line under the table when its trials ran on more than one hardware kind: the same
    seed can give another loss on another kind, so a gap may be the hardware's."""
    kinds = Counter(r.hardware_kind for r in rows if r.hardware_kind)
    if len(kinds) < 2:
        return ""
    listed = ", ".join(f"{kind} ({n})" for kind, n in sorted(kinds.items()))
    return (
        f"The trials ran on {len(kinds)} hardware kinds: {listed}. The same seed moves between "
        "kinds; `make probe RUN=<trial> KINDS=auto` measures by how much (docs/ranking.md)."
    )


def race_text(table: list[RankRow], rule: Rule) -> str:
    counted = sum(r.n + r.failed for r in table)
    run = sum(r.seeds_run + r.failed for r in table)
    fixed = len(table) * rule.max_seeds
    decided = {d: [r.value for r in table if r.decision == d] for d in (BEST, TIED, AT_BUDGET)}
    lines = [
        f"The race (MIN_SEEDS={rule.min_seeds}, MAX_SEEDS={rule.max_seeds}"
        + (f", BUDGET={rule.budget}" if rule.budget else "")
        + f"): {counted} trials counted, {run} run ({run - counted} speculative, not counted), "
        f"against {fixed} for a fixed {rule.max_seeds} seeds per value, the design whose power "
        "it matches (docs/ranking.md)."
    ]
    if decided[BEST]:
        lines.append(f"{decided[BEST][0]} is best: every other value was separated from it.")
    tied = decided[TIED] + decided[AT_BUDGET]
    if tied:
        lines.append(f"Not separated from each other: {', '.join(tied)}.")
    return "\n".join(lines)


def as_dicts(ranking: list[RankRow]) -> list[dict]:
    return [asdict(r) for r in ranking]
