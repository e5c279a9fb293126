"""Publishing a sweep's ranking: files under results/<sweep_id>/, the sweep run, results/latest.

Reads MLflow only, so `ovat rank` rebuilds any sweep's table from the tracking store alone,
on any machine that can reach it. Imports no Ray.
"""

from dataclasses import dataclass
from pathlib import Path

from sweeps import ranking
from sweeps.errors import UnknownSweep
from sweeps.plot import strip_plot
from trainers import keys, tracking
from trainers.paths import results_dir


@dataclass(frozen=True)
class Published:
    """A ranking as published: its rows, its Markdown and the files written."""

    sweep_id: str
    ranking: list[ranking.RankRow]
    markdown: str
    paths: dict[str, Path]


def sweep_run(sweep_id: str):
    if sweep_id == "latest":
        sweep_id = tracking.latest_sweep_id() or ""
    runs = tracking.sweep_runs(sweep_id, keys.ROLE_SWEEP) if sweep_id else []
    if not runs:
        raise UnknownSweep(
            f"no sweep {sweep_id or 'latest'!r} in {tracking.tracking_uri()}; "
            "run `make sweep` first or pass SWEEP=<sweep id>"
        )
    return runs[-1]


def publish(
    sweep_ids: list[str], parent_run_ids: list[str], ablation: str, baseline: str
) -> Published:
    """Rank from MLflow, write table and plot, attach them to the sweep run(s), point latest.

    Several sweep ids (reruns added later) pool their trials into one table.
    """
    rows = [row for sweep_id in sweep_ids for row in ranking.trial_rows(sweep_id)]
    table = ranking.rank(rows, baseline)
    name = "+".join(sweep_ids)
    title = f"{name}: test loss by {ablation} (baseline {baseline or 'none'})"
    folder = results_dir() / name
    later = ranking.followups({r.run_id: r.run_name for r in rows})
    paths = ranking.write(table, folder, title, ranking.followups_markdown(later))
    paths["plot"] = strip_plot(table, rows, folder / "test_loss.png", title)
    for parent in parent_run_ids:
        for path in paths.values():
            tracking.log_artifact(parent, path)
    (results_dir() / "latest").write_text(sweep_ids[-1] + "\n")
    return Published(name, table, paths["markdown"].read_text(), paths)


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


def rebuild(sweep_ids: str = "latest") -> str:
    """The table of one sweep, or of several comma-separated sweeps that share a base."""
    runs = [sweep_run(s.strip()) for s in sweep_ids.split(",") if s.strip()]
    shared_base(runs)
    tags = runs[0].data.tags
    published = publish(
        [r.data.tags[keys.SWEEP_ID] for r in runs],
        [r.info.run_id for r in runs],
        tags.get(keys.ABLATION, "?"),
        tags.get(keys.BASELINE, ""),
    )
    return published.markdown
