"""The ranking: one row per varied value, seeds pooled, from trial rows read elsewhere.

The spread over seeds sits beside every mean: in the group's history three runs of one model
spread wider than the gaps between models, and a table without the spread misleads.
"""

import math
import statistics
from dataclasses import asdict, dataclass

from sweeps.judge import stability, stats


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
    diff_ci_low: float  # Welch 95% interval of that difference (NaN with n < 2)
    diff_ci_high: float
    verdict: str  # better / worse / within noise / baseline / n < 2
    p_best: float = math.nan  # bootstrap over seeds: how often this value ranks first
    rank_low: int = 0  # the ranks it takes in 95% of the bootstrap (0: n < 2)
    rank_high: int = 0
    tied_with_best: bool = False  # not separable from the best (Holm-corrected Welch tests)


def finished_losses(group: list[TrialRow]) -> list[float]:
    return [r.test_loss for r in group if not math.isnan(r.test_loss)]


def rank(rows: list[TrialRow], baseline: str = "") -> list[RankRow]:
    """Group by value, pool finished seeds, compare each value with the baseline's seeds, and
    sort by mean test loss (values with no finished trial last)."""
    groups: dict[str, list[TrialRow]] = {}
    for row in rows:
        groups.setdefault(row.value, []).append(row)
    reference = finished_losses(groups.get(baseline, []))
    trust = stability.stability({value: finished_losses(g) for value, g in groups.items()})
    summaries = []
    for value, group in groups.items():
        losses = finished_losses(group)
        versus = stats.compare(losses, reference, is_baseline=value == baseline)
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
                "failed": len(group) - len(losses),
                "notes": notes(value, group, rows),
                "diff_to_baseline": versus.difference,
                "diff_ci_low": versus.low,
                "diff_ci_high": versus.high,
                "verdict": versus.verdict,
                **(asdict(trust[value]) if value in trust else {}),
            }
        )
    summaries.sort(key=lambda s: (math.isnan(s["test_loss_mean"]), s["test_loss_mean"]))
    return [RankRow(rank=i + 1, **s) for i, s in enumerate(summaries)]


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


def trust_text(rows: list[TrialRow], table: list[RankRow]) -> str:
    """The lines under a table: the tied-with-best set and what one seed can claim."""
    losses = {r.value: finished_losses([t for t in rows if t.value == r.value]) for r in table}
    trust = {
        r.value: stability.Stability(r.p_best, r.rank_low, r.rank_high, r.tied_with_best)
        for r in table
    }
    return stability.verdict_text(losses, trust)


def as_dicts(ranking: list[RankRow]) -> list[dict]:
    return [asdict(r) for r in ranking]
