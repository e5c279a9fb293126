"""Publishing a sweep's ranking: files under results/<sweep_id>/, the sweep run, results/latest.

Reads MLflow only, so `ovat rank` rebuilds any sweep's table from the tracking store alone,
on any machine that can reach it. Imports no Ray.
"""

from dataclasses import dataclass
from pathlib import Path

from sweeps import ranking
from trainers import tracking
from trainers.paths import results_dir

T = tracking.TAG


class UnknownSweep(LookupError):
    pass


@dataclass(frozen=True)
class Report:
    sweep_id: str
    ranking: list[ranking.RankRow]
    markdown: str
    paths: dict[str, Path]


def sweep_run(sweep_id: str):
    if sweep_id == "latest":
        sweep_id = tracking.latest_sweep_id() or ""
    runs = tracking.search_runs({f"{T}sweep_id": sweep_id, f"{T}role": "sweep"}) if sweep_id else []
    if not runs:
        raise UnknownSweep(
            f"no sweep {sweep_id or 'latest'!r} in {tracking.tracking_uri()}; "
            "run `make sweep` first or pass SWEEP=<sweep id>"
        )
    return runs[-1]


def publish(sweep_id: str, parent_run_id: str, ablation: str) -> Report:
    """Rank from MLflow, write the table files, attach them to the sweep run, point latest."""
    rows = ranking.trial_rows(sweep_id)
    table = ranking.rank(rows)
    title = f"{sweep_id}: test loss by {ablation}"
    later = ranking.followups({r.run_id: r.run_name for r in rows})
    paths = ranking.write(table, results_dir() / sweep_id, title, ranking.followups_markdown(later))
    for path in paths.values():
        tracking.log_artifact(parent_run_id, path)
    results_dir().mkdir(parents=True, exist_ok=True)
    (results_dir() / "latest").write_text(sweep_id + "\n")
    return Report(sweep_id, table, paths["markdown"].read_text(), paths)


def rebuild(sweep_id: str = "latest") -> str:
    run = sweep_run(sweep_id)
    tags = run.data.tags
    report = publish(tags[f"{T}sweep_id"], run.info.run_id, tags.get(f"{T}ablation", "?"))
    return report.markdown
