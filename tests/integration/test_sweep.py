"""A real sweep on the shared Ray instance: 2 values x 2 seeds, all four trials at once."""

import pyarrow.parquet as pq
import pytest

from bench.scheduling import fixed_cost_row, scheduling_rows, trial_times
from sweeps.publish.summary import rebuild
from tests.conftest import SWEEP_EPOCHS as EPOCHS
from trainers.config import ExperimentConfig
from trainers.evaluation import load_splits

pytestmark = pytest.mark.integration


def test_ranking_has_both_values_with_two_seeds(pair_sweep):
    report, _, _, folder = pair_sweep
    assert [row.n for row in report.ranking] == [2, 2]
    assert {row.value for row in report.ranking} == {"vq", "ffn"}
    assert all(row.test_loss_mean > 0 and row.test_loss_std >= 0 for row in report.ranking)
    verdicts = {row.value: row.verdict for row in report.ranking}
    assert verdicts["vq"] == "baseline" and verdicts["ffn"] in {"better", "worse", "within noise"}
    table = pq.read_table(folder / "results" / report.sweep_id / "ranking.parquet").to_pylist()
    assert [r["value"] for r in table] == [row.value for row in report.ranking]


def test_trials_are_nested_under_their_values_run_under_one_sweep_run(pair_sweep):
    report, client, runs, _ = pair_sweep
    parents = [r for r in runs if r.data.tags.get("ovat.role") == "sweep"]
    value_runs = {
        r.data.tags["ovat.value"]: r for r in runs if r.data.tags.get("ovat.role") == "value"
    }
    trials = [r for r in runs if r.data.tags.get("ovat.role") == "trial"]
    assert len(parents) == 1 and sorted(value_runs) == ["ffn", "vq"]
    for run in trials:  # each seed under its value's run, each value's run under the sweep's
        value_run = value_runs[run.data.tags["ovat.value"]]
        assert run.data.tags["mlflow.parentRunId"] == value_run.info.run_id
    for row in report.ranking:  # the value run is the ranking's row, finished with the sweep
        value_run = value_runs[row.value]
        assert value_run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert value_run.info.status == "FINISHED"
        assert value_run.info.run_name == f"{row.value}-sample"
        assert value_run.data.params == {"model.bottleneck": row.value}
        metrics = value_run.data.metrics
        assert metrics["test_loss_mean"] == pytest.approx(row.test_loss_mean, rel=1e-12)
        assert metrics["test_loss_std"] == pytest.approx(row.test_loss_std, rel=1e-12)
        assert (metrics["n"], metrics["rank"]) == (row.n, row.rank) == (2, row.rank)
        low = metrics.get("diff_ci_low", float("nan"))  # NaN is not logged: an empty cell
        assert low == pytest.approx(row.diff_ci_low, rel=1e-12, nan_ok=True)
        assert value_run.data.tags["ovat.verdict"] == row.verdict
        assert value_run.data.tags["ovat.ranked_over"] == report.sweep_id
        assert "one run per seed" in value_run.data.tags["mlflow.note.content"]
        # the mean as seeds finished, then the ranking's row: each written once per event
        history = client.get_metric_history(value_run.info.run_id, "n")
        assert [int(m.value) for m in sorted(history, key=lambda m: m.timestamp)][-1] == 2
        assert {int(m.value) for m in history} <= {1, 2}
    assert len(trials) == 4
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {
        "ranking.md",
        "ranking.parquet",
        "test_loss.png",
        "reconstructions.png",
        "environment.txt",  # every installed package, once per sweep
    }
    assert parent.data.tags["ovat.command"]  # what started it
    for run in trials:
        tags = run.data.tags
        assert tags["ovat.sweep_id"] == report.sweep_id and tags["ovat.vary"] == "model.bottleneck"
        assert run.info.run_name == f"{tags['ovat.value']}-sample-s{tags['ovat.seed']}"
        assert run.data.params["model.bottleneck"] == tags["ovat.value"]
        assert run.data.params["train.seed"] == tags["ovat.seed"]
        assert run.info.status == "FINISHED"
        for metric in ("train_loss", "val_loss"):
            history = client.get_metric_history(run.info.run_id, metric)
            assert sorted(m.step for m in history) == list(range(1, EPOCHS + 1)), metric
        for metric in ("test_loss", "params_total", "params_trainable", "params_bottleneck"):
            assert metric in run.data.metrics
        assert "placement.host" in tags and len(tags["ovat.fingerprint"]) == 16
        [data] = run.inputs.dataset_inputs  # the UI's Dataset column
        assert data.dataset.name == "sample-32px-limit96" and len(data.dataset.digest) == 16
        assert tags["mlflow.source.git.commit"] and tags["ovat.git_dirty"] in ("true", "false")
        assert tags["ovat.env.torch"].startswith("2.14") and tags["ovat.env.ray"] == "2.60.0"
        assert len(tags["ovat.weights_hash"]) == 16
        assert run.data.metrics["audit.untrained_params"] == 0
        assert run.data.metrics["audit.frozen_changed"] == 0
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "checkpoint")}
        assert {"checkpoint/model.pt", "checkpoint/audit.md", "checkpoint/reconstructions.png"} <= (
            artifacts
        )
        assert "images" in {a.path for a in client.list_artifacts(run.info.run_id)}  # log_image


def test_seeds_differ_and_rank_rebuilds_from_mlflow_alone(in_sweep_store):
    report, _, runs, _ = in_sweep_store
    losses = {
        (r.data.tags["ovat.value"], r.data.tags["ovat.seed"]): r.data.metrics["test_loss"]
        for r in runs
        if r.data.tags.get("ovat.role") == "trial"
    }
    assert losses[("vq", "0")] != losses[("vq", "1")]
    # follow-up tests may have added runs below the table; the table itself is unchanged
    assert rebuild(report.sweep_id).markdown.startswith(report.markdown)


def test_four_concurrent_trials_land_every_per_step_loss(pair_sweep):
    _, client, runs, _ = pair_sweep
    trials = [r for r in runs if r.data.tags.get("ovat.role") == "trial"]
    first_end = min(r.info.end_time for r in trials)
    assert all(r.info.start_time < first_end for r in trials), "the 4 trials did not overlap"
    for run in trials:
        cfg = ExperimentConfig.from_flat(run.data.params)
        assert run.data.params["train.global_batch_size"] == str(cfg.train.batch_size)
        train_images = len(load_splits(cfg)["train"])
        per_epoch = train_images // cfg.train.batch_size  # the last partial batch is dropped
        history = client.get_metric_history(run.info.run_id, "train_loss_step")
        steps = [m.step for m in history]
        assert sorted(steps) == list(range(1, EPOCHS * per_epoch + 1)), run.info.run_name
        by_step = {m.step: m.value for m in history}
        for epoch, logged in enumerate(client.get_metric_history(run.info.run_id, "train_loss")):
            first = logged.step - 1
            means = [by_step[first * per_epoch + i] for i in range(1, per_epoch + 1)]
            assert sum(means) / per_epoch == pytest.approx(logged.value, rel=1e-5), epoch


def test_the_scheduling_bench_reads_a_real_sweeps_timeline(in_sweep_store):
    report, _, _, _ = in_sweep_store
    times = trial_times(report.sweep_id)
    assert len(times) == 4
    for trial in times:
        assert 0 < trial.startup_s < trial.duration  # reported by the trial's first epoch
    for run in [r for r in in_sweep_store[2] if r.data.tags.get("ovat.role") == "trial"]:
        m = run.data.metrics
        parts = m["startup.workers_s"] + m["startup.data_s"] + m["startup.model_s"]
        assert (
            parts == pytest.approx(m["startup_s"])
            and min(m["startup.workers_s"], m["startup.data_s"], m["startup.model_s"]) >= 0
        )
        assert m["flops_per_image"] > 0 and m["achieved_tflops"] > 0
    packing, gap = scheduling_rows(times, concurrency=4)
    assert packing.value >= 0.999  # no schedule beats the ideal
    assert gap.value >= 0
    assert all(t.fixed_s >= t.startup_s for t in times)  # + the trial actor's launch
    fixed = fixed_cost_row(times, default_train_s=60.0)
    assert 0 < fixed.value < 1 and fixed.detail["startup.launch_s"] >= 0


def test_the_best_trial_is_a_registered_model_that_loads_in_one_call(in_sweep_store):
    import mlflow
    import torch

    report = in_sweep_store[0]
    assert report.model.startswith("models:/ovat-pair/")
    mlflow.set_tracking_uri(f"sqlite:///{in_sweep_store[3]}/mlflow.db")
    model = mlflow.pytorch.load_model(report.model)
    images = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        assert model(images).shape == images.shape


def test_a_second_plan_of_the_ablation_costs_it_from_the_first_sweep(in_sweep_store, capsys):
    import yaml

    from sweeps.cli import main
    from tests.conftest import SWEEP_OVERRIDES

    folder = in_sweep_store[3]
    path = folder / "pair.yaml"  # the shared sweep's ablation, as a file
    raw = {"vary": {"model.bottleneck": ["vq", "ffn"]}, "baseline": "vq", "seeds": 2}
    path.write_text(yaml.safe_dump({"preset": "tiny", "base": SWEEP_OVERRIDES, **raw}))
    assert main(["plan", str(path), "--gap", "0.01"]) == 0
    lines = capsys.readouterr().out.splitlines()
    [cost] = [line for line in lines if line.startswith("ovat: cost: ")]
    assert "rates from history (4 trials)" in cost, lines
    assert "ovat:   history: 2 earlier trials" in lines  # each value's two seeds
    [resolution] = [line for line in lines if line.startswith("ovat: resolution: ")]
    assert "2 seeds a value detect a gap in test loss of " in resolution
    assert "from 1 earlier sweeps of pair (4 trials)" in resolution
    assert any(line.startswith("ovat: GAP=0.01 needs ") for line in lines)


def test_the_logging_bench_reports_what_a_real_trial_reports(pair_sweep):
    """bench/tracking_load.py simulates trials' results: its names must be a real trial's."""
    from bench.tracking_load import EPOCH_METRICS, FINAL_METRICS, FIRST_METRICS, PLACEMENT_TAGS

    _, _, runs, _ = pair_sweep
    trial = next(
        r
        for r in runs
        if r.data.tags.get("ovat.role") == "trial" and r.data.tags["ovat.value"] == "vq"
    )
    simulated = {*EPOCH_METRICS, *FIRST_METRICS, *FINAL_METRICS, "train_loss_step"}
    assert set(trial.data.metrics) == simulated
    placement = {
        k.removeprefix("placement.") for k in trial.data.tags if k.startswith("placement.")
    }
    assert placement == set(PLACEMENT_TAGS)
