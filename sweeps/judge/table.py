"""The ranking as Markdown: the full table with its legend, and the narrow one for a run's
description. Text only: where it is written is sweeps.publish's business."""

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from sweeps.judge import stability
from sweeps.judge.ranking import RankRow


def loss_text(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.4f}"


def _signed(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:+.4f}"


def versus_text(r: RankRow) -> str:
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


def _seeds(r: RankRow) -> str:
    """n, the failed among them, and seeds run but not counted by a race."""
    extra = r.seeds_run - r.n
    return f"{r.n}{f' ({r.failed} failed)' if r.failed else ''}" + (
        f" (+{extra} not counted)" if r.decision and extra > 0 else ""
    )


def decision_text(r: RankRow) -> str:
    """`separated at 4`: a race's decision and the seeds it had then ("" without a race)."""
    return f"{r.decision} at {r.decided_at}" if r.decision and r.decided_at else r.decision


def _decision(r: RankRow) -> str:
    return decision_text(r) or "–"


LEGEND = (
    "Δ: mean test loss minus the baseline's, with Welch's 95% interval over seeds; better / worse "
    "when it excludes 0, one comparison at a time. P(best) and rank range: each mean drawn "
    f"{stability.RESAMPLES:,} times from a t distribution with its own spread; the range holds "
    "95% of the draws. ≈best: not told apart from the best by Welch tests, Holm-corrected over "
    "every comparison with the best at a family-wise 5%. The model is chosen on val loss."
)
LEGEND_RACE = (
    "Seeds were run until decided (SEEDS=auto): after every round each pair of values still "
    "racing was tested (Welch, group-sequential, Holm over all pairs, family-wise 5%); a value "
    "shown worse than another is separated and got no more seeds, and its statistics count the "
    "seeds the race counted. Δ: mean test loss minus the baseline's, with its interval at the "
    "level of that pair's last test (it excludes 0 exactly when the test rejects); verdict: that "
    "test. ≈best: not separated. P(best) and rank range: each mean drawn from a t distribution "
    "with its own spread. The model is chosen on val loss."
)


@dataclass(frozen=True)
class Column:
    """One column of the full table: its header, its alignment and its text for a row."""

    name: str
    right: bool  # numbers align right
    cell: Callable[[RankRow], str]


BITS = Column("bits/byte", True, lambda r: loss_text(r.test_bits_per_byte))


def full_columns(ranking: list[RankRow]) -> list[Column]:
    """The full table's columns, the same in Markdown and in the HTML export: a race's decision
    where the seeds were raced, bits per byte where the loss is a language model's."""
    raced = is_raced(ranking)
    head = [
        Column("rank", True, lambda r: str(r.rank)),
        Column("value", False, lambda r: r.value),
        Column("test loss", True, lambda r: loss_text(r.test_loss_mean)),
        Column("± std", True, lambda r: loss_text(r.test_loss_std)),
        *([BITS] if in_bytes(ranking) else []),
        Column("min", True, lambda r: loss_text(r.test_loss_min)),
        Column("max", True, lambda r: loss_text(r.test_loss_max)),
        Column("val loss", True, lambda r: loss_text(r.val_loss_mean)),
        Column("n", True, _seeds),
        Column(f"Δ vs baseline {'[CI]' if raced else '[95% CI]'}", False, versus_text),
        Column("verdict", False, lambda r: r.verdict),
        Column("P(best)", True, _p_best),
        Column("rank range", False, _ranks),
    ]
    tail = [
        Column("params total", True, lambda r: f"{r.params_total:,}"),
        Column("params bottleneck", True, lambda r: f"{r.params_bottleneck:,}"),
        Column("runs", False, lambda r: r.runs),
        Column("notes", False, lambda r: r.notes),
    ]
    return head + ([Column("decision", False, _decision)] if raced else []) + tail


def is_raced(ranking: list[RankRow]) -> bool:
    return any(r.decision for r in ranking)


def in_bytes(ranking: list[RankRow]) -> bool:
    return any(not math.isnan(r.test_bits_per_byte) for r in ranking)


def legend(ranking: list[RankRow]) -> str:
    return LEGEND_RACE if is_raced(ranking) else LEGEND


def to_markdown(ranking: list[RankRow], title: str, trust: str = "") -> str:
    """The table, its legend, and `trust` (ranking.trust_text) under it."""
    table = _markdown_table(full_columns(ranking), ranking)
    return "\n".join(
        [f"### {title}", "", *table, "", legend(ranking), *([trust] if trust else []), ""]
    )


def _markdown_table(columns: list[Column], ranking: list[RankRow]) -> list[str]:
    """Header, alignment row and one line per value."""
    return [
        "| " + " | ".join(c.name for c in columns) + " |",
        "|" + "".join("---:|" if c.right else "---|" for c in columns),
        *("| " + " | ".join(c.cell(r) for c in columns) + " |" for r in ranking),
    ]


# the run description's columns, picked from the full table's (its "params total" as "params")
SUMMARY_COLUMNS = (
    "rank",
    "value",
    "test loss",
    "± std",
    "bits/byte",
    "n",
    "Δ vs baseline [CI]",
    "Δ vs baseline [95% CI]",
    "verdict",
    "P(best)",
    "rank range",
    "decision",
    "params",
    "notes",
)


def summary_markdown(ranking: list[RankRow], title: str) -> str:
    """The table narrow enough for a run's description in the MLflow UI: no run names."""
    columns = {c.name: c for c in full_columns(ranking)}
    columns["params"] = replace(columns["params total"], name="params")
    narrow = [columns[name] for name in SUMMARY_COLUMNS if name in columns]
    return "\n".join([f"**{title}**", "", *_markdown_table(narrow, ranking), ""])
