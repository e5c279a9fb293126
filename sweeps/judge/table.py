"""The ranking as Markdown: the full table with its legend, and the narrow one for a run's
description. Text only: where it is written is sweeps.publish's business."""

import math

from sweeps.judge import stability
from sweeps.judge.ranking import RankRow


def loss_text(x: float) -> str:
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
        f"| {r.rank} | {r.value} | {loss_text(r.test_loss_mean)} | {loss_text(r.test_loss_std)} | "
        f"{loss_text(r.test_loss_min)} | {loss_text(r.test_loss_max)} | "
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
        f"| {r.rank} | {r.value} | {loss_text(r.test_loss_mean)} | {loss_text(r.test_loss_std)} | "
        f"{r.n}{f' ({r.failed} failed)' if r.failed else ''} | {_versus(r)} | {r.verdict} | "
        f"{_p_best(r)} | {_ranks(r)} | {r.params_total:,} | {r.notes} |"
        for r in ranking
    ]
    return "\n".join([f"**{title}**", "", head, *lines, ""])
