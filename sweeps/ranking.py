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

from trainers import tracking

T = tracking.TAG


@dataclass(frozen=True)
class TrialRow:
    value: str
    seed: int
    run_name: str
    status: str
    test_loss: float  # NaN when the trial did not finish
    params_total: int
    params_bottleneck: int


@dataclass(frozen=True)
class RankRow:
    rank: int
    value: str
    test_loss_mean: float
    test_loss_std: float  # sample std over seeds; NaN with one seed
    n: int
    params_total: int
    params_bottleneck: int
    runs: str
    failed: int


def trial_rows(sweep_id: str) -> list[TrialRow]:
    rows = []
    for run in tracking.search_runs({f"{T}sweep_id": sweep_id, f"{T}role": "trial"}):
        tags, metrics = run.data.tags, run.data.metrics
        rows.append(
            TrialRow(
                value=tags.get(f"{T}value", "?"),
                seed=int(tags.get(f"{T}seed", -1)),
                run_name=run.info.run_name,
                status=run.info.status,
                test_loss=metrics.get("test_loss", math.nan),
                params_total=int(metrics.get("params_total", 0)),
                params_bottleneck=int(metrics.get("params_bottleneck", 0)),
            )
        )
    return rows


def rank(rows: list[TrialRow]) -> list[RankRow]:
    """Group by value, pool finished seeds, sort by mean test loss (unfinished values last)."""
    groups: dict[str, list[TrialRow]] = {}
    for row in rows:
        groups.setdefault(row.value, []).append(row)
    summaries = []
    for value, group in groups.items():
        losses = [r.test_loss for r in group if not math.isnan(r.test_loss)]
        summaries.append(
            {
                "value": value,
                "test_loss_mean": statistics.fmean(losses) if losses else math.nan,
                "test_loss_std": statistics.stdev(losses) if len(losses) > 1 else math.nan,
                "n": len(losses),
                "params_total": max(r.params_total for r in group),
                "params_bottleneck": max(r.params_bottleneck for r in group),
                "runs": ", ".join(sorted(r.run_name for r in group)),
                "failed": len(group) - len(losses),
            }
        )
    summaries.sort(key=lambda s: (math.isnan(s["test_loss_mean"]), s["test_loss_mean"]))
    return [RankRow(rank=i + 1, **s) for i, s in enumerate(summaries)]


def _loss(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.4f}"


def to_markdown(ranking: list[RankRow], title: str) -> str:
    head = (
        "| rank | value | test loss | ± std | n | params total | params bottleneck | runs |\n"
        "|---:|---|---:|---:|---:|---:|---:|---|"
    )
    lines = [
        f"| {r.rank} | {r.value} | {_loss(r.test_loss_mean)} | {_loss(r.test_loss_std)} | "
        f"{r.n}{f' ({r.failed} failed)' if r.failed else ''} | {r.params_total:,} | "
        f"{r.params_bottleneck:,} | {r.runs} |"
        for r in ranking
    ]
    return "\n".join([f"### {title}", "", head, *lines, ""])


def write(ranking: list[RankRow], folder: Path, title: str) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": folder / "ranking.md", "parquet": folder / "ranking.parquet"}
    paths["markdown"].write_text(to_markdown(ranking, title))
    columns = {name: [getattr(r, name) for r in ranking] for name in RankRow.__dataclass_fields__}
    schema = pa.schema(
        [(name, _arrow_type(RankRow.__dataclass_fields__[name].type)) for name in columns]
    )
    pq.write_table(pa.table(columns, schema=schema), paths["parquet"])
    return paths


def _arrow_type(annotation) -> pa.DataType:
    return {int: pa.int64(), float: pa.float64(), str: pa.string()}[annotation]


def as_dicts(ranking: list[RankRow]) -> list[dict]:
    return [asdict(r) for r in ranking]
