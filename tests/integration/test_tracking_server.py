"""A sweep logging to a real `mlflow server` on 127.0.0.1 that is killed mid-sweep and started
again: the trials keep training, their writes wait in the outbox, and nothing is lost.

The server runs with a SQLite backend and a local artifact store, as `make server` would; the
ranking is then rebuilt from the server alone.
"""

import threading
import time

import pytest
from mlflow.tracking import MlflowClient

from bench.servers import TrackingServer
from sweeps.publish.summary import rebuild
from sweeps.run.outbox import OUTBOX_FILE, REJECTED_FILE, SWEEP_OUTBOXES
from sweeps.run.tuner import run_plan
from tests.conftest import tiny_plan

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EPOCHS = 3
# The default model: the tiny one could finish before the outage begins.
OVERRIDES = {"train.epochs": EPOCHS, "data.limit": 128, "train.log_every": 1}


@pytest.fixture
def server(workspace):
    """`mlflow server` with one worker (it starts in ~15 s here instead of ~25 s with four)."""
    server = TrackingServer(workspace, f"sqlite:///{workspace}/server.db", workers=1)
    server.start(timeout_s=120)
    yield server
    server.stop()


def outage_during_training(server: TrackingServer, errors: list) -> None:
    """Once a first epoch is in the server, kill it; start it again once the sweep's courier has
    found it down (a write failed for the outage and waits on disk), i.e. while or after the
    trials trained without it."""
    try:
        client = MlflowClient(server.uri)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            experiments = [e.experiment_id for e in client.search_experiments()]
            runs = client.search_runs(experiments, "tags.`ovat.role` = 'trial'")
            if any("val_loss" in r.data.metrics for r in runs):
                break
            time.sleep(0.2)
        server.stop()
        while time.monotonic() < deadline and not any(
            outbox.down_since is not None for outbox in SWEEP_OUTBOXES.values()
        ):
            time.sleep(0.1)
        time.sleep(2)  # more writes wait meanwhile
        server.start()
    except Exception as error:  # noqa: BLE001 (handed to the test's thread, which fails)
        errors.append(error)


def test_a_tracking_outage_mid_sweep_loses_nothing(
    ray_session, server, workspace, monkeypatch, capfd
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
    monkeypatch.setenv("OVAT_TRACKING_WAIT_S", "180")
    results = workspace / "results"
    errors: list = []
    watcher = threading.Thread(target=outage_during_training, args=(server, errors))
    watcher.start()
    raw = {"vary": {"model.bottleneck": ["vq"]}, "baseline": "vq"}  # one trial: 3 processes
    report = run_plan(tiny_plan("outage", raw, OVERRIDES, preset="default"))
    watcher.join()
    assert not errors, errors

    said = capfd.readouterr().err
    assert "unreachable" in said and "trials keep training" in said
    assert "tracking store back after" in said
    assert not list(results.glob(f"*/{OUTBOX_FILE}")) and not list(
        results.glob(f"*/{REJECTED_FILE}")
    )

    client = MlflowClient(server.uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    trials = client.search_runs(experiments, "tags.`ovat.role` = 'trial'")
    assert [r.data.tags["ovat.value"] for r in trials] == ["vq"]
    for run in trials:
        assert run.info.status == "FINISHED", run.info.run_name
        for metric in ("train_loss", "val_loss"):
            history = client.get_metric_history(run.info.run_id, metric)
            assert sorted(m.step for m in history) == list(range(1, EPOCHS + 1)), metric
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "train_loss_step")]
        assert sorted(steps) == list(range(1, len(steps) + 1)) and len(steps) >= EPOCHS
        assert len(steps) % EPOCHS == 0  # every epoch's steps, none twice
        artifacts = [a.path for a in client.list_artifacts(run.info.run_id, "checkpoint")]
        assert "checkpoint/model.pt" in artifacts
    stored = list((workspace / "artifacts").rglob("model.pt"))
    assert len(stored) == 1, "the checkpoint is in the server's artifact store"
    parent = client.search_runs(experiments, "tags.`ovat.role` = 'sweep'")[0]
    assert parent.info.status == "FINISHED"
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {
        "ranking.md",
        "ranking.parquet",
        "test_loss.png",
    }
    assert rebuild(report.sweep_id).markdown.startswith(
        report.markdown
    )  # `make rank` from the server
