"""The sweep driver killed with SIGKILL mid-sweep, then `sweep --resume 1`: only the missing
trial runs, and MLflow holds exactly one finished run per trial.

The sweep trains on an `imagefolder` tree of real JPEGs prepared by `ovat prepare` (the
`prepared_tree` fixture): `make sweep DATASET=imagefolder ROOT=...` reuses those shards.

Both drivers are real `ovat sweep` processes attached to the shared Ray instance (RAY_ADDRESS);
`resources.cpus_per_worker: 2` makes the two trials run one after the other on 2 CPUs, so the
kill lands after the first trial finished and while the second trains.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import yaml

from data.config import DataConfig
from data.registry import prepared_folder
from data.shards import MANIFEST
from sweeps.cli import main
from sweeps.publish.summary import rebuild
from tests.conftest import ROOT
from trainers.paths import data_dir

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ABLATION = {
    "preset": "tiny",
    "base": {
        "train.epochs": 2,
        "data.limit": 64,
        "train.batch_size": 32,
        "resources.cpus_per_worker": 2,
    },
    "vary": {"model.bottleneck": ["vq", "identity"]},
    "baseline": "vq",
}


def trial_runs(client):
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments, "tags.`ovat.role` = 'trial'")


def tail(log: Path) -> str:
    return log.read_text()[-3000:]


def wait_for(condition, timeout: float, what: str, process, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if process.poll() is not None:
            pytest.fail(f"the sweep ended (rc {process.returncode}) before {what}:\n{tail(log)}")
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}:\n{tail(log)}")


def stop_driver(process: subprocess.Popen, stop: signal.Signals, log: Path) -> None:
    """Send `stop`; a driver still there 120 s later is killed, so that it cannot keep holding
    the shared Ray instance's CPUs (later tests would wait for them), and the test fails."""
    process.send_signal(stop)
    try:
        process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"the sweep was still running 120 s after {stop.name}:\n{tail(log)}")


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_stopped_driver_resumes_only_the_missing_trial(
    stop, ray_session, workspace, prepared_tree, capsys
):
    root = prepared_tree[0]
    folder = prepared_folder(DataConfig(dataset="imagefolder", root=str(root)), data_dir())
    prepared_at = (folder / MANIFEST).stat().st_mtime_ns
    path = workspace / "resumable.yaml"
    path.write_text(yaml.safe_dump(ABLATION))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "RAY_ADDRESS": ray_session.get_runtime_context().gcs_address,
    }
    command = [sys.executable, "-m", "sweeps.cli", "sweep", str(path), "--dataset", "imagefolder"]
    command += ["--root", str(root)]
    client = mlflow.tracking.MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    log = workspace / "first.log"
    with open(log, "w") as output:
        first = subprocess.Popen(command, cwd=workspace, env=env, stdout=output, stderr=output)
        try:
            finished = wait_for(
                lambda: [r for r in trial_runs(client) if r.info.status == "FINISHED"],
                400,
                "the first trial to finish",
                first,
                log,
            )
            running = wait_for(
                lambda: [r for r in trial_runs(client) if r.info.status == "RUNNING"],
                120,
                "the second trial to start",
                first,
                log,
            )
        finally:
            stop_driver(first, stop, log)
    [done], [interrupted] = finished, running
    assert done.data.tags["ovat.value"] != interrupted.data.tags["ovat.value"]
    [sweep_run] = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "tags.`ovat.role` = 'sweep'"
    )
    if stop == signal.SIGKILL:
        assert first.returncode == -signal.SIGKILL
    else:  # Tune's graceful path: state saved, the sweep's run KILLED, exit code 130
        said = log.read_text()
        assert first.returncode == 130, said[-3000:]
        assert "interrupted" in said and "RESUME=" in said
        assert sweep_run.info.status == "KILLED"
        assert sweep_run.data.tags["ovat.status"] == "interrupted"

    # Up-arrow and RESUME: the options the sweep started with are accepted, a changed one is not
    changed = [*command[3:], "--epochs", "3", "--resume", "1"]
    assert main(changed) == 2
    refusal = capsys.readouterr().err
    assert "started with train.epochs=2; resuming it with train.epochs=3 would change" in refusal
    resumed = subprocess.run(
        [*command, "--resume", "1", "--verbose", "1"],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "1 of 2 trials finished" in resumed.stdout
    assert "Trial status" in resumed.stdout  # --verbose 1 reached Tune on resume

    runs = trial_runs(client)
    assert sorted(r.data.tags["ovat.trial_key"] for r in runs) == ["identity/s0", "vq/s0"]
    assert all(r.info.status == "FINISHED" and "test_loss" in r.data.metrics for r in runs)
    assert {(r.data.params["data.dataset"], r.data.params["data.root"]) for r in runs} == {
        ("imagefolder", str(root))
    }
    assert (folder / MANIFEST).stat().st_mtime_ns == prepared_at  # the shards were reused
    again = client.get_run(done.info.run_id)
    assert again.info.end_time == done.info.end_time  # the finished trial was not rerun
    assert {r.info.run_id for r in runs} == {done.info.run_id, interrupted.info.run_id}
    for run in runs:  # every epoch landed once the resumed trial finished
        history = client.get_metric_history(run.info.run_id, "train_loss")
        assert {m.step for m in history} == {1, 2}

    [parent] = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "tags.`ovat.role` = 'sweep'"
    )
    assert parent.info.status == "FINISHED" and parent.data.tags["ovat.resumed"] == "1"
    report = rebuild(parent.data.tags["ovat.sweep_id"]).markdown
    assert "| vq |" in report and "| identity |" in report and "failed" not in report
