"""A sweep logging to a real `mlflow server` on 127.0.0.1 that is killed mid-sweep and started
again: the trials keep training, their writes wait in the outbox, and nothing is lost.

The server runs with a SQLite backend and a local artifact store, as `make server` would; the
ranking is then rebuilt from the server alone.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from sweeps.publish.summary import rebuild
from sweeps.run.outbox import OUTBOX_FILE, REJECTED_FILE, SWEEP_OUTBOXES
from sweeps.run.tuner import run_plan
from tests.conftest import tiny_plan

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EPOCHS = 3
# The default model: the tiny one could finish before the outage begins.
OVERRIDES = {"train.epochs": EPOCHS, "data.limit": 128, "train.log_every": 1}


class MlflowServer:
    """`mlflow server` with one worker (it starts in ~15 s here instead of ~25 s with four)."""

    def __init__(self, folder: Path):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.folder, self.process = folder, None
        self.uri = f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120) -> None:
        mlflow_bin = Path(sys.executable).with_name("mlflow")
        self.process = subprocess.Popen(
            [str(mlflow_bin), "server", "--host", "127.0.0.1", "--port", str(self.port)]
            + ["--workers", "1", "--backend-store-uri", f"sqlite:///{self.folder}/server.db"]
            + ["--artifacts-destination", str(self.folder / "artifacts")],
            stdout=open(self.folder / "server.log", "a"),  # noqa: SIM115 (the child owns it)
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its uvicorn workers die with it
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2):
                    return
            except OSError:
                time.sleep(0.25)
        pytest.fail(f"mlflow server did not answer on {self.uri} within {timeout} s")

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@pytest.fixture
def server(workspace):
    server = MlflowServer(workspace)
    server.start()
    yield server
    if server.process and server.process.poll() is None:
        server.kill()


def outage_during_training(server: MlflowServer, errors: list) -> None:
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
        server.kill()
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
