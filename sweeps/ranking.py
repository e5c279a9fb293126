"""The ranking table, rebuilt from MLflow alone: one row per varied value, seeds pooled.

The spread over seeds sits beside every mean: in the group's history three runs of one model
spread wider than the gaps between models, and a table without the spread misleads.
"""

import math
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sweeps import stability, stats
from trainers import keys, tracking


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


def trial_rows(sweep_id: str) -> list[TrialRow]:
    rows = []
    for run in tracking.sweep_runs(sweep_id):
        tags, metrics = run.data.tags, run.data.metrics
        rows.append(
            TrialRow(
                value=tags.get(keys.VALUE, "?"),
                seed=int(tags.get(keys.SEED, -1)),
                run_name=run.info.run_name,
                status=run.info.status,
                test_loss=metrics.get(keys.TEST_LOSS, math.nan),
                params_total=int(metrics.get(keys.PARAMS_TOTAL, 0)),
                params_bottleneck=int(metrics.get(keys.PARAMS_BOTTLENECK, 0)),
                fingerprint=tags.get(keys.FINGERPRINT, ""),
                untrained=tags.get(keys.UNTRAINED, ""),
                frozen_changed=tags.get(keys.FROZEN_CHANGED, ""),
                run_id=run.info.run_id,
                error=tags.get(keys.ERROR, ""),
            )
        )
    return rows


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


def _loss(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.4f}"


def _signed(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:+.4f}"


def _versus(r: RankRow) -> str:
    if r.verdict == "baseline" or math.isnan(r.diff_to_baseline):
        return "–"
    interval = (
        "" if math.isnan(r.diff_ci_low) else f" [{r.diff_ci_low:+.4f}, {r.diff_ci_high:+.4f}]"
    )
    return _signed(r.diff_to_baseline) + interval


def _p_best(r: RankRow) -> str:
    return "–" if math.isnan(r.p_best) else f"{r.p_best:.2f}"


def _ranks(r: RankRow) -> str:
    if not r.rank_low:
        return "–"
    span = str(r.rank_low) if r.rank_low == r.rank_high else f"{r.rank_low}-{r.rank_high}"
    return span + (" ≈best" if r.tied_with_best else "")


def to_markdown(ranking: list[RankRow], title: str, trust: str = "") -> str:
    """The table, its legend, and `trust` (stability.verdict_text) under it."""
    head = (
        "| rank | value | test loss | ± std | min | max | n | Δ vs baseline [95% CI] | verdict "
        "| P(best) | rank range | params total | params bottleneck | runs | notes |\n"
        "|---:|---|---:|---:|---:|---:|---:|---|---|---:|---|---:|---:|---|---|"
    )
    lines = [
        f"| {r.rank} | {r.value} | {_loss(r.test_loss_mean)} | {_loss(r.test_loss_std)} | "
        f"{_loss(r.test_loss_min)} | {_loss(r.test_loss_max)} | "
        f"{r.n}{f' ({r.failed} failed)' if r.failed else ''} | {_versus(r)} | {r.verdict} | "
        f"{_p_best(r)} | {_ranks(r)} | {r.params_total:,} | {r.params_bottleneck:,} | "
        f"{r.runs} | {r.notes} |"
        for r in ranking
    ]
    legend = (
        "Δ: mean test loss minus the baseline's; the interval is Welch's t at 95% over seeds. "
        "better / worse: the interval excludes 0 (one comparison at a time); within noise: it "
        f"does not. P(best) and rank range: {stability.RESAMPLES:,} bootstrap resamples of each "
        "value's seeds (95% of them fall in the range). ≈best: not told apart from the best by "
        "Welch tests at a family-wise 5% (Holm-corrected over all comparisons with the best), a "
        "stricter test: with few seeds even a value that never ranks first can be ≈best."
    )
    return "\n".join(
        [f"### {title}", "", head, *lines, "", legend, *([trust] if trust else []), ""]
    )


def summary_markdown(ranking: list[RankRow], title: str) -> str:
    """The table narrow enough for a run's description in the MLflow UI: no run names."""
    head = (
        "| rank | value | test loss | ± std | n | Δ vs baseline [95% CI] | verdict | P(best) "
        "| rank range | params | notes |\n|---:|---|---:|---:|---:|---|---|---:|---|---:|---|"
    )
    lines = [
        f"| {r.rank} | {r.value} | {_loss(r.test_loss_mean)} | {_loss(r.test_loss_std)} | "
        f"{r.n}{f' ({r.failed} failed)' if r.failed else ''} | {_versus(r)} | {r.verdict} | "
        f"{_p_best(r)} | {_ranks(r)} | {r.params_total:,} | {r.notes} |"
        for r in ranking
    ]
    return "\n".join([f"**{title}**", "", head, *lines, ""])


@dataclass(frozen=True)
class FollowUp:
    run_name: str
    kind: str  # eval, transplant, finetune
    source: str  # the source run's name
    val_loss: float
    test_loss: float
    notes: str


def followups(trial_run_ids: dict[str, str]) -> list[FollowUp]:
    """Follow-up runs descending from the sweep's trials, also follow-ups of follow-ups.

    trial_run_ids maps run id -> run name for the sweep's trials.
    """
    names, found = dict(trial_run_ids), []
    for run in tracking.runs_with_source():  # oldest first: sources precede what they feed
        tags, metrics = run.data.tags, run.data.metrics
        if tags.get(keys.SOURCE_RUN) not in names:
            continue
        names[run.info.run_id] = run.info.run_name
        note = []
        if "test_loss_before" in metrics:
            note.append(f"test loss before {metrics['test_loss_before']:.4f}")
        if tags.get(keys.TRAINABLE):
            note.append(f"trained: {tags[keys.TRAINABLE]}")
        if tags.get(keys.UNTRAINED):
            note.append(f"never got a gradient: {tags[keys.UNTRAINED]}")
        found.append(
            FollowUp(
                run.info.run_name,
                tags.get(keys.ROLE, "?"),
                names[tags[keys.SOURCE_RUN]],
                metrics.get(keys.VAL_LOSS, math.nan),
                metrics.get(keys.TEST_LOSS, math.nan),
                "; ".join(note),
            )
        )
    return found


def followups_markdown(rows: list[FollowUp]) -> str:
    if not rows:
        return ""
    lines = [
        "#### Follow-up runs",
        "",
        "| run | kind | source | val loss | test loss | notes |",
        "|---|---|---|---:|---:|---|",
    ]
    lines += [
        f"| {r.run_name} | {r.kind} | {r.source} | {_loss(r.val_loss)} | "
        f"{_loss(r.test_loss)} | {r.notes} |"
        for r in rows
    ]
    return "\n".join([*lines, ""])


def write(
    ranking: list[RankRow], folder: Path, title: str, appendix: str = "", trust: str = ""
) -> dict[str, Path]:
    """ranking.md (the table, what it can claim, then any appendix such as follow-ups) and
    ranking.parquet."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": folder / "ranking.md", "parquet": folder / "ranking.parquet"}
    text = to_markdown(ranking, title, trust)
    paths["markdown"].write_text(f"{text}\n{appendix}" if appendix else text)
    columns = {name: [getattr(r, name) for r in ranking] for name in RankRow.__dataclass_fields__}
    schema = pa.schema(
        [(name, _arrow_type(RankRow.__dataclass_fields__[name].type)) for name in columns]
    )
    pq.write_table(pa.table(columns, schema=schema), paths["parquet"])
    return paths


def _arrow_type(annotation) -> pa.DataType:
    return {int: pa.int64(), float: pa.float64(), str: pa.string(), bool: pa.bool_()}[annotation]


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
