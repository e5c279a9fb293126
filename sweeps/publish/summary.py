"""Publishing a sweep's ranking: files under results/<sweep_id>/, the sweep run, results/latest.

Reads MLflow only, so `ovat rank` rebuilds any sweep's table from the tracking store alone,
on any machine that can reach it. Imports no Ray.
"""

import sys
from dataclasses import dataclass
from pathlib import Path

from data.registry import kind
from sweeps.errors import UnknownSweep
from sweeps.judge import ranking
from sweeps.judge.table import summary_markdown
from sweeps.publish import leaderboard, methods, values
from sweeps.publish.comparison import comparison
from sweeps.publish.diff import pooled_differences
from sweeps.publish.files import write
from sweeps.publish.followups import followups, followups_markdown
from sweeps.publish.plot import strip_plot
from sweeps.publish.records import Sweep, checked, seed_rule, sweep_run, trial_rows
from trainers import keys, tracking
from trainers.paths import results_dir

NOTE = "mlflow.note.content"  # a run's description, shown as Markdown on its page
BEST_MEAN = "best_test_loss_mean"
RANKING_TABLE = "ranking_table.json"  # mlflow.load_table(RANKING_TABLE, run_ids=[...])
RANKING_COLUMNS = (
    "rank",
    "value",
    "test_loss_mean",
    "test_loss_std",
    "n",
    "failed",
    "diff_to_baseline",
    "diff_ci_low",
    "diff_ci_high",
    "verdict",
    "p_best",
    "rank_low",
    "rank_high",
    "tied_with_best",
    "val_loss_mean",
    "decision",
    "decided_at",
    "seeds_run",
    "params_total",
    "params_bottleneck",
    "notes",
)


@dataclass(frozen=True)
class Published:
    """A ranking as published: its rows, its Markdown and the files written."""

    sweep_id: str
    ranking: list[ranking.RankRow]
    markdown: str
    paths: dict[str, Path]
    leaderboard: str = ""  # the MLflow UI's view of the sweep's value runs, best first
    trials: str = ""  # and of its trial runs, one row per seed
    model: str = ""  # models:/ovat-<ablation>/<version>, the best trial's model (at sweep end)
    title: str = ""  # the table's heading
    trust: str = ""  # what the ranking can claim, under the table (ranking.trust_text)


def publish(
    sweep_ids: list[str],
    parent_run_ids: list[str],
    ablation: str,
    baseline: str,
    trials: dict[str, list] | None = None,
) -> Published:
    """Rank from MLflow, write table and plot, attach them to the sweep run(s), point latest.

    Several sweep ids (reruns added later) pool their trials into one table. `trials`: each
    sweep's trial runs where the caller has read them already (each read is a search of them all).
    """
    sweep_ids = [checked(sweep_id) for sweep_id in sweep_ids]  # they name folders
    trials = trials or {}
    rows = [row for s in sweep_ids for row in trial_rows(s, trials.get(s))]
    parents = [tracking.client().get_run(run_id) for run_id in parent_run_ids]
    rule = race_of(parents)
    table = ranking.rank(rows, baseline, rule)
    if is_text(parents[0]):
        table = ranking.in_bits_per_byte(table)
    name = "+".join(sweep_ids)
    title = f"{name}: test loss by {ablation} (baseline {baseline or 'none'})"
    folder = results_dir() / name
    later = followups({r.run_id: r.run_name for r in rows})
    kinds = ranking.kinds_text(rows)
    if kinds:
        print(f"ovat: warning: {kinds}", file=sys.stderr)
    trust = "\n".join(filter(None, (ranking.trust_text(rows, table, rule), kinds)))
    paths = write(table, folder, title, followups_markdown(later), trust)
    paths["plot"] = strip_plot(table, rows, folder / "test_loss.png", title)
    paths["methods"] = folder / methods.FILE
    first = parents[0].data
    paths["methods"].write_text(methods.paragraph(first.params, first.tags, rows, rule))
    picture = comparison(table, rows, folder / "reconstructions.png")
    if picture is not None:
        paths["reconstructions"] = picture
    markdown = paths["markdown"].read_text()
    for parent in parent_run_ids:
        for path in paths.values():
            tracking.log_artifact(parent, path)
        summarize(parent, table, summary_markdown(table, title))
    if ablation != keys.PROBE_ABLATION:  # `latest` is the newest sweep, never a probe
        (results_dir() / "latest").write_text(sweep_ids[-1] + "\n")
    experiment = tracking.experiment_name(parents[-1].info.experiment_id)
    values.publish(table, sweep_ids, parents, experiment)
    view = leaderboard.values_view(sweep_ids[-1], in_bytes=is_text(parents[0]))
    board = leaderboard.publish(view, experiment)
    trials = leaderboard.publish(leaderboard.trials_view(sweep_ids[-1]), experiment)
    return Published(name, table, markdown, paths, board, trials, title=title, trust=trust)


def is_text(sweep_run) -> bool:
    """Whether a sweep trained on text (a language model): its loss is also told in bits."""
    return kind(sweep_run.data.params.get("data.dataset", "sample")) == "text"


def race_of(parents: list):
    """The rule of a SEEDS=auto sweep; none for pooled sweeps, whose seeds no race counted."""
    rules = [seed_rule(run) for run in parents]
    if len(rules) > 1 and any(rules):
        print(
            "ovat: warning: pooled sweeps rank every finished seed; the SEEDS=auto race of "
            "each applies to that sweep alone (make rank SWEEP=<one id>)",
            file=sys.stderr,
        )
        return None
    return rules[0]


def summarize(run_id: str, table: list[ranking.RankRow], markdown: str) -> None:
    """The sweep's run reads as its result: the ranking as the run's description (Markdown on
    its page, without the run names) and as an MLflow table, the best value as a tag and its
    mean as a metric."""
    tags = {NOTE: markdown}
    best = ranking.chosen(table)
    if best is not None:
        tags[keys.BEST_VALUE] = best.value
        tracking.log_metrics(run_id, {BEST_MEAN: best.test_loss_mean}, step=0)
    tracking.set_tags(run_id, tags)
    columns = {name: [row[name] for row in ranking.as_dicts(table)] for name in RANKING_COLUMNS}
    tracking.log_table(run_id, columns, RANKING_TABLE)


def shared_base(runs: list) -> None:
    """Sweeps pool only when their base configs agree; otherwise name the first difference."""
    first = runs[0].data.params
    for run in runs[1:]:
        for key in sorted(set(first) | set(run.data.params)):
            if first.get(key) != run.data.params.get(key):
                raise UnknownSweep(
                    f"sweeps {runs[0].data.tags[keys.SWEEP_ID]} and "
                    f"{run.data.tags[keys.SWEEP_ID]} do not share a base: {key} is "
                    f"{first.get(key)!r} vs {run.data.params.get(key)!r}"
                )


def rebuild(sweep_ids: str = "latest", ablation: str = "") -> Published:
    """The table of one sweep, or of several comma-separated sweeps that share a base;
    `latest` is the newest sweep of `ablation` where given."""
    runs = [sweep_run(s.strip(), ablation) for s in sweep_ids.split(",") if s.strip()]
    shared_base(runs)
    ids = [r.data.tags[keys.SWEEP_ID] for r in runs]
    sweeps = [Sweep(i, run, tracking.sweep_runs(i)) for i, run in zip(ids, runs, strict=True)]
    if len(runs) > 1:  # pooled seeds must be comparable: say what else differs
        for line in pooled_differences(sweeps):
            print(f"ovat: warning: pooled sweeps differ: {line}", file=sys.stderr)
    tags = runs[0].data.tags
    published = publish(
        ids,
        [r.info.run_id for r in runs],
        tags.get(keys.ABLATION, "?"),
        tags.get(keys.BASELINE, ""),
        {sweep.sweep_id: sweep.trials for sweep in sweeps},
    )
    return published
