"""A trial whose worker is killed mid-run resumes from its checkpoint and ends exactly where a
run that was never interrupted ends: the same loss every epoch and the same final weights. For
both train paths (in memory, and streamed by Ray Data: the redone epoch reads the same blocks in
the same order), with llmffn, whose dropout draws from torch's global generator (reseeded per
epoch, as it is not in the checkpoint).

One sweep of four trials on the shared Ray instance, each pair the same seed and config: the
rank-0 worker of the `killed` one of each pair is SIGKILLed once its first epoch is in MLflow."""

import os
import signal
import threading

import mlflow
import pytest

from sweeps.define.plan import Trial
from tests.conftest import trials_sweep
from trainers.presets import preset

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EPOCHS = 3
KILLED = ("memory-killed", "streamed-killed")


def kill_after_first_epoch(uri: str, done: threading.Event, killed: dict) -> None:
    """Poll MLflow for each KILLED trial's first epoch and its worker's pid; SIGKILL it once."""
    client = mlflow.tracking.MlflowClient(uri)
    while not done.wait(0.2) and len(killed) < len(KILLED):
        experiments = [e.experiment_id for e in client.search_experiments()]
        for run in client.search_runs(experiments, "tags.`ovat.role` = 'trial'"):
            value = run.data.tags.get("ovat.value")
            ready = "train_loss" in run.data.metrics and "placement.pid" in run.data.tags
            if value in KILLED and value not in killed and ready:
                killed[value] = int(run.data.tags["placement.pid"])
                os.kill(killed[value], signal.SIGKILL)


@pytest.fixture(scope="module")
def resumed_sweep(ray_session, tmp_path_factory):
    folder = tmp_path_factory.mktemp("resumed")
    # The default model: the tiny one would finish its epochs before the kill lands.
    base = preset(
        "default",
        {
            "model.bottleneck": "llmffn",
            "data.limit": 192,
            "train.epochs": EPOCHS,
            "resources.cpus_per_worker": 0.5,
        },
    )
    streamed = base.with_overrides({"data.stream": "on"})
    trials = (
        Trial(value="memory", seed=0, config=base),
        Trial(value="memory-killed", seed=0, config=base),
        Trial(value="streamed", seed=0, config=streamed),
        Trial(value="streamed-killed", seed=0, config=streamed),
    )
    done, killed = threading.Event(), {}
    uri = f"sqlite:///{folder}/mlflow.db"
    killer = threading.Thread(target=kill_after_first_epoch, args=(uri, done, killed))
    killer.start()
    try:
        with trials_sweep(folder, "resumed", trials, "data.stream", "memory") as (_, client, runs):
            done.set()
            killer.join()
            yield client, runs, killed
    finally:
        done.set()
        killer.join()


def losses(client, run) -> list[float]:
    history = client.get_metric_history(run.info.run_id, "train_loss")
    return [m.value for m in sorted(history, key=lambda m: m.step)]


@pytest.mark.parametrize("path", ["memory", "streamed"])
def test_a_resumed_trial_ends_exactly_where_an_uninterrupted_one_does(resumed_sweep, path):
    client, runs, killed = resumed_sweep
    whole, resumed = runs[path], runs[f"{path}-killed"]
    assert f"{path}-killed" in killed, "the worker was never killed: the trial ended too soon"
    assert resumed.data.metrics["resumes"] == 1 and whole.data.metrics["resumes"] == 0
    assert int(resumed.data.tags["placement.pid"]) != killed[f"{path}-killed"]
    assert len(losses(client, whole)) == EPOCHS
    assert losses(client, resumed) == losses(client, whole)
    assert resumed.data.metrics["test_loss"] == whole.data.metrics["test_loss"]
    assert resumed.data.tags["ovat.weights_hash"] == whole.data.tags["ovat.weights_hash"]
