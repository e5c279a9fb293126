"""Publishing and merging rankings from a real (SQLite) MLflow store, no Ray needed."""

import pytest

from sweeps.publish.summary import UnknownSweep, rebuild
from trainers import tracking


def fake_sweep(
    sweep_id: str,
    losses: dict[str, list[float]],
    base: dict | None = None,
    val_offset: dict[str, float] | None = None,
    ablation: str = "pair",
) -> None:
    """A sweep as the runner logs it: one parent run and one finished trial run per seed, its
    val loss the test loss + 0.001 (+ the value's val_offset)."""
    tags = {"ovat.sweep_id": sweep_id, "ovat.ablation": ablation, "ovat.baseline": "vq"}
    parent = tracking.start_run("ovat-pair", sweep_id, {**tags, "ovat.role": "sweep"}, base or {})
    for value, seeds in losses.items():
        for seed, loss in enumerate(seeds):
            trial_tags = {**tags, "ovat.role": "trial", "ovat.value": value, "ovat.seed": seed}
            name = f"{value}-sample-s{seed}"
            run = tracking.start_run("ovat-pair", name, trial_tags, base or {}, parent)
            val = loss + 0.001 + (val_offset or {}).get(value, 0.0)
            metrics = {"test_loss": loss, "val_loss": val, "params_total": 10}
            tracking.log_metrics(run, metrics, step=2)
            tracking.end_run(run)
    tracking.end_run(parent)


def test_rank_merges_two_sweeps_that_share_a_base(workspace):
    fake_sweep("pair-a", {"vq": [0.020, 0.021], "ffn": [0.010, 0.011]}, {"train.lr": 3e-4})
    fake_sweep("pair-b", {"vq": [0.0205], "ffn": [0.0105]}, {"train.lr": 3e-4})
    text = rebuild("pair-a,pair-b").markdown
    assert text.startswith("### pair-a+pair-b: test loss by pair (baseline vq)")
    assert "| 1 | ffn | 0.0105 | 0.0005 | 0.0100 | 0.0110 | 0.0115 | 3 |" in text
    assert "| better |" in text
    folder = workspace / "results" / "pair-a+pair-b"
    assert {p.name for p in folder.iterdir()} == {"ranking.md", "ranking.parquet", "test_loss.png"}
    assert (folder / "test_loss.png").read_bytes()[:4] == b"\x89PNG"
    assert rebuild("latest").markdown.startswith("### pair-b: ")  # the newest sweep run
    assert "seed 0 pooled more than once" in text  # b reran seed 0: its noise is not new seeds
    # each sweep alone still ranks on its own seeds
    assert (
        "| 1 | ffn | 0.0105 | 0.0007 | 0.0100 | 0.0110 | 0.0115 | 2 |" in rebuild("pair-a").markdown
    )
    assert (workspace / "results" / "latest").read_text() == "pair-a\n"


def test_the_best_value_is_chosen_on_val_loss_and_reported_on_test_loss(workspace):
    # ffn has the lower test loss, vq the lower val loss: the sweep selects vq on val and
    # reports its test loss; the table stays in test-loss order.
    fake_sweep("pair-v", {"vq": [0.020, 0.021], "ffn": [0.010, 0.011]}, val_offset={"ffn": 0.02})
    text = rebuild("pair-v").markdown
    assert text.index("| 1 | ffn |") < text.index("| 2 | vq |")
    [parent] = tracking.sweep_runs("pair-v", "sweep")
    assert parent.data.tags["ovat.best_value"] == "vq"
    assert parent.data.metrics["best_test_loss_mean"] == pytest.approx(0.0205)


def test_latest_and_previous_are_sweeps_never_a_newer_probe(workspace):
    from sweeps.publish.records import resolve

    fake_sweep("pair-a", {"vq": [0.020, 0.021]})
    fake_sweep("pair-b", {"vq": [0.020, 0.022]})
    fake_sweep("probe-c", {"same-seed": [0.02, 0.02]}, ablation="probe")
    assert (resolve("latest"), resolve("previous")) == ("pair-b", "pair-a")
    assert rebuild("latest").sweep_id == "pair-b"
    rebuild("probe-c")  # a probe's table is still published, but `latest` stays a sweep
    assert (workspace / "results" / "latest").read_text() == "pair-b\n"


def test_a_sweep_id_tag_that_would_leave_results_is_refused(workspace):
    fake_sweep("x/../../escaped", {"vq": [0.020, 0.021]})
    with pytest.raises(UnknownSweep, match="is not a folder name ovat writes"):
        rebuild("x/../../escaped")
    with pytest.raises(UnknownSweep, match="is not a folder name ovat writes"):
        rebuild("latest")
    assert not (workspace.parent / "escaped").exists() and not (workspace / "escaped").exists()


def test_sweeps_with_different_bases_do_not_merge(workspace):
    fake_sweep("pair-a", {"vq": [0.02]}, {"train.lr": 3e-4})
    fake_sweep("pair-c", {"vq": [0.02]}, {"train.lr": 1e-3})
    with pytest.raises(UnknownSweep, match="do not share a base: train.lr is '0.0003' vs '0.001'"):
        rebuild("pair-a,pair-c")


def test_the_sweeps_run_reads_as_its_ranking(workspace):
    import mlflow

    fake_sweep("pair-a", {"vq": [0.020, 0.022], "ffn": [0.010, 0.011]})
    rebuild("pair-a")
    [parent] = tracking.sweep_runs("pair-a", "sweep")
    note = parent.data.tags["mlflow.note.content"]  # the run page's description
    assert note.startswith("**pair-a: test loss by pair (baseline vq)**")
    assert "| 1 | ffn | 0.0105 | 0.0007 | 2 |" in note and "| 2 | vq | 0.0210 |" in note
    assert parent.data.tags["ovat.best_value"] == "ffn"
    assert parent.data.metrics["best_test_loss_mean"] == pytest.approx(0.0105)
    mlflow.set_tracking_uri(tracking.tracking_uri())
    mlflow.set_experiment("ovat-pair")
    table = mlflow.load_table("ranking_table.json", run_ids=[parent.info.run_id])
    assert list(table["value"]) == ["ffn", "vq"] and list(table["rank"]) == [1, 2]
    assert list(table["verdict"]) == ["better", "baseline"]


def test_the_leaderboard_link_uses_the_address_a_person_opens(workspace, monkeypatch):
    """In compose the code reaches the server as http://mlflow:5000; a browser on the host
    opens the published port, which OVAT_UI_URL names."""
    from sweeps.publish import leaderboard

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    assert leaderboard.served() and leaderboard.ui_base() == "http://mlflow:5000"
    monkeypatch.setenv("OVAT_UI_URL", "http://127.0.0.1:5077/")
    assert leaderboard.url("3", "k").startswith("http://127.0.0.1:5077/#/experiments/3/runs?")
    monkeypatch.delenv("OVAT_UI_URL")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.setenv("OVAT_UI_PORT", "5123")
    assert not leaderboard.served() and leaderboard.ui_base() == "http://127.0.0.1:5123"


def test_the_leaderboard_is_a_saved_view_of_the_sweeps_trials_best_first(workspace, monkeypatch):
    import json

    from sweeps.publish import leaderboard

    monkeypatch.setenv("OVAT_UI_PORT", "5123")
    fake_sweep("pair-a", {"vq": [0.02]})
    link = rebuild("pair-a").leaderboard
    experiment = tracking.client().get_experiment_by_name("ovat-pair")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    key = leaderboard.view_key("pair-a")
    assert link == (
        f"http://127.0.0.1:5123/#/experiments/{experiment.experiment_id}/runs"
        f"?workflowType=machine_learning&viewStateShareKey={key}"
    )
    view = json.loads(experiment.tags[f"mlflow.sharedViewState.{key}"])
    assert view["searchFilter"] == "tags.`ovat.sweep_id` = 'pair-a' and tags.`ovat.role` = 'trial'"
    assert (view["orderByKey"], view["orderByAsc"]) == ("metrics.`test_loss`", True)
    assert (
        "metrics.`test_loss`" in view["selectedColumns"]
        and "tags.`ovat.value`" in view["selectedColumns"]
    )
    runs = tracking.client().search_runs([experiment.experiment_id], view["searchFilter"])
    assert {r.data.tags["ovat.role"] for r in runs} == {"trial"} and len(runs) == 1


def test_the_sweep_gets_one_picture_of_every_value_in_ranking_order(workspace, tmp_path):
    import numpy as np
    from PIL import Image

    from trainers.previews import PADDING

    fake_sweep("pair-a", {"vq": [0.020], "ffn": [0.010]})
    shade = {"vq": 60, "ffn": 200}  # each trial's reconstruction row in its own grey
    for run in tracking.sweep_runs("pair-a"):
        value = run.data.tags["ovat.value"]
        tile = 8
        grid = np.full((3 * (tile + PADDING) + PADDING, 2 * (tile + PADDING) + PADDING, 3), 255)
        grid[2 * (tile + PADDING) + PADDING :][:tile] = shade[value]
        folder = tmp_path / value / "checkpoint"
        folder.mkdir(parents=True)
        Image.fromarray(grid.astype(np.uint8)).save(folder / "reconstructions.png")
        tracking.log_artifacts(run.info.run_id, folder, "checkpoint")
    published = rebuild("pair-a")
    picture = Image.open(published.paths["reconstructions"]).convert("RGB")
    rows = 2 + 2  # original, masked, then ffn (rank 1) and vq (rank 2)
    assert picture.height == rows * (8 + PADDING)
    pixels = np.asarray(picture)
    shades = [pixels[i * (8 + PADDING) + PADDING + 2, -4, 0] for i in (2, 3)]
    assert shades == [200, 60]  # ffn's row, then vq's: best first
    [parent] = tracking.sweep_runs("pair-a", "sweep")
    names = {a.path for a in tracking.client().list_artifacts(parent.info.run_id)}
    assert "reconstructions.png" in names
