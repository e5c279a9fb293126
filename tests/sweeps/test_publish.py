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
    assert {p.name for p in folder.iterdir()} == {
        "ranking.md",
        "ranking.parquet",
        "test_loss.png",
        "methods.md",
    }
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


def saved_view(experiment, link: str) -> dict:
    """The view a printed link opens: the experiment tag its share key names."""
    import json

    key = link.split("viewStateShareKey=")[1]
    return json.loads(experiment.tags[f"mlflow.sharedViewState.{key}"])


def test_the_leaderboard_is_a_saved_view_of_the_sweeps_values_best_first(workspace, monkeypatch):
    monkeypatch.setenv("OVAT_UI_PORT", "5123")
    fake_sweep("pair-a", {"vq": [0.02, 0.03], "ffn": [0.01, 0.012]})
    published = rebuild("pair-a")
    experiment = tracking.client().get_experiment_by_name("ovat-pair")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    prefix = f"http://127.0.0.1:5123/#/experiments/{experiment.experiment_id}/runs"
    assert published.leaderboard.startswith(f"{prefix}?workflowType=machine_learning&")
    board = saved_view(experiment, published.leaderboard)
    assert board["searchFilter"] == "tags.`ovat.sweep_id` = 'pair-a' and tags.`ovat.role` = 'value'"
    assert (board["orderByKey"], board["orderByAsc"]) == ("metrics.`test_loss_mean`", True)
    for column in ("test_loss_mean", "test_loss_std", "diff_ci_low", "diff_ci_high", "p_best"):
        assert f"metrics.`{column}`" in board["selectedColumns"]
    runs = tracking.client().search_runs(
        [experiment.experiment_id], board["searchFilter"], order_by=["metrics.test_loss_mean ASC"]
    )
    assert [r.data.tags["ovat.value"] for r in runs] == [row.value for row in published.ranking]

    trials = saved_view(experiment, published.trials)  # one row per seed, still reachable
    assert (
        trials["searchFilter"] == "tags.`ovat.sweep_id` = 'pair-a' and tags.`ovat.role` = 'trial'"
    )
    assert trials["orderByKey"] == "metrics.`test_loss`"
    runs = tracking.client().search_runs([experiment.experiment_id], trials["searchFilter"])
    assert {r.data.tags["ovat.role"] for r in runs} == {"trial"} and len(runs) == 4


def value_runs(sweep_id: str) -> dict:
    return {r.data.tags["ovat.value"]: r for r in tracking.sweep_runs(sweep_id, "value")}


def test_every_value_has_one_run_carrying_its_ranking_row(workspace):
    import math

    fake_sweep("pair-a", {"vq": [0.020, 0.021, 0.026], "ffn": [0.010], "amvq": [0.03, 0.05]})
    published = rebuild("pair-a")
    runs = value_runs("pair-a")
    [parent] = tracking.sweep_runs("pair-a", "sweep")
    assert sorted(runs) == ["amvq", "ffn", "vq"]
    for row in published.ranking:
        run = runs[row.value]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.info.status == "FINISHED"
        for name in ("rank", "test_loss_mean", "test_loss_std", "n", "diff_to_baseline",
                     "diff_ci_low", "diff_ci_high", "p_best", "val_loss_mean"):  # fmt: skip
            number = getattr(row, name)
            if math.isnan(number):  # a single seed's spread: no cell rather than "NaN"
                assert name not in run.data.metrics, (row.value, name)
            else:
                assert run.data.metrics[name] == pytest.approx(number, rel=1e-12), name
        assert run.data.tags["ovat.verdict"] == row.verdict
        assert f"over {row.n} seeds" in run.data.tags["mlflow.note.content"]
    assert "test_loss_std" not in runs["ffn"].data.metrics  # one seed
    assert runs["vq"].data.tags["ovat.verdict"] == "baseline"


def test_ranking_again_and_pooling_update_the_value_runs_never_duplicate_them(workspace):
    fake_sweep("pair-a", {"vq": [0.020, 0.021], "ffn": [0.010, 0.011]}, {"train.lr": 3e-4})
    fake_sweep("pair-b", {"vq": [0.0205], "ffn": [0.0105]}, {"train.lr": 3e-4})
    rebuild("pair-a")
    first = {v: r.info.run_id for v, r in value_runs("pair-a").items()}
    pooled = rebuild("pair-a,pair-b")
    for sweep_id in ("pair-a", "pair-b"):  # each sweep's rows say they are the pooled ones
        runs = value_runs(sweep_id)
        assert sorted(runs) == ["ffn", "vq"]  # one run per value, in each sweep
        for row in pooled.ranking:
            assert runs[row.value].data.metrics["n"] == 3
            assert runs[row.value].data.metrics["test_loss_mean"] == pytest.approx(
                row.test_loss_mean, rel=1e-12
            )
            assert runs[row.value].data.tags["ovat.ranked_over"] == "pair-a+pair-b"
    assert {v: r.info.run_id for v, r in value_runs("pair-a").items()} == first
    rebuild("pair-a")  # alone again: its own seeds, newest write wins
    runs = value_runs("pair-a")
    assert runs["ffn"].data.metrics["n"] == 2
    assert runs["ffn"].data.metrics["test_loss_mean"] == pytest.approx(0.0105)
    assert runs["ffn"].data.tags["ovat.ranked_over"] == "pair-a"


def test_while_seeds_finish_a_value_run_holds_their_count_mean_and_sample_std():
    import statistics

    from sweeps.publish import values

    assert values.running([]) == {"n": 0}
    assert values.running([float("nan")]) == {"n": 0}  # a diverged seed has no loss
    assert values.running([0.02]) == {"n": 1, "test_loss_mean": 0.02}  # no std from one seed
    numbers = values.running([0.02, float("nan"), 0.03, 0.025])
    assert numbers["n"] == 3 and numbers["test_loss_mean"] == pytest.approx(0.025)
    assert numbers["test_loss_std"] == pytest.approx(statistics.stdev([0.02, 0.03, 0.025]))


def test_a_stopped_sweep_ends_its_open_value_runs_with_it(workspace):
    from sweeps.publish import values

    fake_sweep("pair-a", {"vq": [0.02]})
    tags = {"ovat.sweep_id": "pair-a", "ovat.ablation": "pair"}
    run_id = tracking.create_run("ovat-pair", "ffn-sample", values.value_tags(tags, "ffn"))
    values.end_open("pair-a", status="KILLED")
    assert tracking.run_status(run_id) == "KILLED"


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
