"""Faults injected for real: a diverging trial and a training worker killed with SIGKILL.

One sweep of two trials on the shared Ray instance: `train.lr=1e6` diverges at step 2 (AdamW's
first update blows the weights up); the healthy trial's rank-0 worker process is killed once
its first epoch is in MLflow, and must come back from its checkpoint into the same run.
"""

import os
import signal
import threading

import mlflow
import pytest

from sweeps.run.tuner import run_plan
from tests.conftest import tiny_plan

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EPOCHS = 4
HEALTHY, DIVERGING = 0.0003, 1000000.0


def kill_worker_after_first_epoch(uri: str, done: threading.Event, killed: list) -> None:
    """Poll MLflow for the healthy trial's first epoch and its worker's pid; SIGKILL it once."""
    client = mlflow.tracking.MlflowClient(uri)
    while not done.wait(0.2):
        runs = client.search_runs(
            [e.experiment_id for e in client.search_experiments()],
            f"tags.`ovat.value` = '{HEALTHY}' and tags.`ovat.role` = 'trial'",
        )
        if runs and "train_loss" in runs[0].data.metrics and "placement.pid" in runs[0].data.tags:
            pid = int(runs[0].data.tags["placement.pid"])
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return


@pytest.fixture(scope="module")
def faulty_sweep(ray_session, tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    uri = f"sqlite:///{folder}/mlflow.db"
    # The default model: the tiny one would finish its epochs before the kill lands.
    overrides = {"train.epochs": EPOCHS, "data.limit": 256}
    raw = {"vary": {"train.lr": [HEALTHY, DIVERGING]}, "baseline": str(HEALTHY)}
    plan = tiny_plan("faults", raw, overrides, preset="default")
    done, killed = threading.Event(), []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("OVAT_RESULTS", str(folder / "results"))
        patch.chdir(folder)
        killer = threading.Thread(target=kill_worker_after_first_epoch, args=(uri, done, killed))
        killer.start()
        try:
            report = run_plan(plan)
        finally:
            done.set()
            killer.join()
        client = mlflow.tracking.MlflowClient(uri)
        runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
        yield report, client, runs, killed


def trial_runs(runs, value) -> list:
    """The value's trial runs (its value run carries the value too)."""
    tags = [(r, r.data.tags) for r in runs]
    return [r for r, t in tags if t.get("ovat.value") == str(value) and t["ovat.role"] == "trial"]


def test_killed_worker_resumes_from_its_checkpoint_in_the_same_run(faulty_sweep):
    _, client, runs, killed = faulty_sweep
    assert len(killed) == 1, "the worker was never killed: the trial ended too soon"
    [run] = trial_runs(runs, HEALTHY)  # one run, not a second one for the retry
    assert run.info.status == "FINISHED" and "test_loss" in run.data.metrics
    assert run.data.metrics["resumes"] == 1
    assert int(run.data.tags["placement.pid"]) != killed[0]  # the restarted worker's
    steps = {m.step for m in client.get_metric_history(run.info.run_id, "train_loss")}
    assert steps == set(range(1, EPOCHS + 1))  # no epoch lost


def test_diverged_trial_fails_with_its_reason_and_stays_in_the_ranking(faulty_sweep):
    report, _, runs, _ = faulty_sweep
    [run] = trial_runs(runs, DIVERGING)
    assert run.info.status == "FAILED"
    reason = run.data.tags["ovat.error"]
    assert reason == "diverged at epoch 1, step 2: training loss is not finite"
    assert "test_loss" not in run.data.metrics
    rows = {row.value: row for row in report.ranking}
    assert (rows[str(DIVERGING)].n, rows[str(DIVERGING)].failed) == (0, 1)
    assert reason in rows[str(DIVERGING)].notes and rows[str(HEALTHY)].n == 1
    assert "| 0 (1 failed) |" in report.markdown
    [parent] = [r for r in runs if r.data.tags.get("ovat.role") == "sweep"]
    assert parent.data.tags["ovat.failed_trials"] == "1"
