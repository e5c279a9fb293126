"""One MLflow run per varied value: the ranking's row as metrics and tags, the leaderboard's rows.

MLflow's runs table sorts by a metric but cannot group runs with a spread or an interval, so
each value of a sweep gets a run of its own, nested under the sweep's run, its seed trials
nested under it. The sweep's driver opens it with the value's first trial and updates n, mean
and std as seeds finish (sweeps.run.mlflow_callback); publishing a ranking writes the whole row
and ends the run. A value run is found by its tags, so `make rank` again, or over pooled sweeps,
updates it and never opens a second one.
"""

import math
import statistics

from sweeps.judge.ranking import RankRow
from sweeps.publish import leaderboard
from trainers import keys, tracking

NOTE = "mlflow.note.content"  # a run's description, shown as Markdown on its page
# The ranking's numbers on the value run, as metrics the runs table can show and sort.
METRICS = (
    "rank",
    "test_loss_mean",
    "test_loss_std",
    "test_bits_per_byte",
    "n",
    "diff_to_baseline",
    "diff_ci_low",
    "diff_ci_high",
    "p_best",
    "rank_low",
    "rank_high",
    "val_loss_mean",
    "seeds_run",
    "failed",
    keys.PARAMS_TOTAL,
    keys.PARAMS_BOTTLENECK,
)


def key_tags(sweep_id: str, value: str) -> dict[str, str]:
    """What finds a value's run again: its sweep, its role and its value."""
    return {keys.SWEEP_ID: sweep_id, keys.ROLE: keys.ROLE_VALUE, keys.VALUE: value}


def run_name(value: str, dataset: str) -> str:
    """`vq-sample`: its trials are `vq-sample-s0`, `vq-sample-s1`, ..."""
    return f"{value}-{dataset}"


def running(losses: list[float]) -> dict[str, float]:
    """While seeds finish: n, and the mean and std of the finished ones (std from 2 seeds)."""
    finished = [x for x in losses if not math.isnan(x)]
    if not finished:
        return {"n": 0}
    numbers = {"n": len(finished), "test_loss_mean": statistics.fmean(finished)}
    return numbers | ({"test_loss_std": statistics.stdev(finished)} if len(finished) > 1 else {})


def row_metrics(row: RankRow) -> dict[str, float]:
    """Every ranking number of the row; NaN ones (a single seed's std and interval) are left out
    so the table's cell stays empty instead of reading NaN."""
    numbers = {name: float(getattr(row, name)) for name in METRICS}
    return {name: x for name, x in numbers.items() if not math.isnan(x)}


def description(row: RankRow, pooled: str, trials_link: str) -> str:
    """The value run's page: its row in words and the link to its seeds."""
    spread = "" if math.isnan(row.test_loss_std) else f" ± {row.test_loss_std:.4f}"
    mean = "no finished seed" if math.isnan(row.test_loss_mean) else f"{row.test_loss_mean:.4f}"
    verdict = row.verdict or "no verdict"
    if row.decision:
        verdict += f"; {row.decision}"
    return (
        f"**{row.value}**: rank {row.rank}, test loss {mean}{spread} over {row.n} seeds "
        f"({verdict}).\n\n[Its trials, one run per seed]({trials_link}). Ranked over {pooled}."
    )


def publish(
    table: list[RankRow], sweep_ids: list[str], parents: list, experiment: str
) -> dict[str, str]:
    """Write every row of the table to its value run under each sweep run (pooled sweeps: each
    sweep's value runs carry the pooled row and say so); value -> run id under the last."""
    pooled = "+".join(sweep_ids)
    ids: dict[str, str] = {}
    for sweep_id, parent in zip(sweep_ids, parents, strict=True):
        dataset = parent.data.params.get("data.dataset", "data")
        # One search for the sweep's value runs, not a lookup and a status read per row.
        found = {r.data.tags[keys.VALUE]: r for r in tracking.sweep_runs(sweep_id, keys.ROLE_VALUE)}
        for row in table:
            existing = found.get(row.value)
            run_id = existing.info.run_id if existing else tracking.create_run(
                experiment, run_name(row.value, dataset), value_tags(parent.data.tags, row.value),
                parent.info.run_id,
            )  # fmt: skip
            link = leaderboard.publish(leaderboard.trials_view(sweep_id, row.value), experiment)
            tracking.log_metrics(run_id, row_metrics(row), step=0)
            tracking.set_tags(
                run_id,
                {
                    keys.VERDICT: row.verdict,
                    keys.DECISION: row.decision,
                    keys.RANKED_OVER: pooled,
                    NOTE: description(row, pooled, link),
                },
            )
            if existing is None or existing.info.status != "FINISHED":
                tracking.end_run(run_id)
            ids[row.value] = run_id
    return ids


def value_tags(sweep_tags: dict[str, str], value: str) -> dict[str, str]:
    """A value run's tags: its keys, and the ablation, varied key and baseline of its sweep
    (`sweep_tags`: the sweep run's tags, which name its id)."""
    shared = (keys.ABLATION, keys.VARY, keys.BASELINE)
    sweep_id = sweep_tags[keys.SWEEP_ID]
    return {**{k: sweep_tags[k] for k in shared if k in sweep_tags}, **key_tags(sweep_id, value)}


def end_open(sweep_id: str, status: str) -> None:
    """A sweep that stops before its ranking ends its value runs as it ends its own run."""
    for run in tracking.search_runs({keys.SWEEP_ID: sweep_id, keys.ROLE: keys.ROLE_VALUE}):
        if run.info.status == "RUNNING":
            tracking.end_run(run.info.run_id, status=status)
