"""A node lost under running trials never hangs the sweep (issue found on the compose cluster).

A head and one worker node on loopback; the trials ask for `pinned_gpu`, which only that node
has, so both train there. Once both have checkpointed, the node's raylet and workers are killed
(`remove_node`, not graceful). No live node can hold the trials' workers any more: the sweep's
watchdog ends them and Tune reruns each once; then a replacement node with `pinned_gpu` joins,
the reruns continue from their checkpoints there, and the sweep ends with both trials ranked.

The sweep is a driver process of its own, as `make sweep` is. Its own Ray cluster: it runs in
`make test-cluster`'s pytest process, before the module that builds the three-node cluster.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.cluster, pytest.mark.integration]

MIB = 2**20
NODE = {"num_cpus": 2, "resources": {"pinned_gpu": 2}, "object_store_memory": 150 * MIB}
EPOCHS = 6
WAIT_S = 600  # for each step of the story; far above what it takes here
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def doomed():
    from ray.cluster_utils import Cluster

    nodes = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "object_store_memory": 150 * MIB},
    )
    victim = nodes.add_node(**NODE)
    nodes.wait_for_nodes()
    yield nodes, victim
    nodes.shutdown()


def wait_until(condition, what: str, driver: subprocess.Popen) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if driver.poll() is not None:
            raise AssertionError(f"the sweep ended (exit {driver.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen in {WAIT_S} s")
        time.sleep(0.5)


# Train's record of the checkpoints its controller accepted. A checkpoint folder exists as soon
# as a worker starts writing it, before the report reaches the controller; a node killed in
# between leaves a folder that a rerun does not resume from (CI: resumes 0), so the test waits
# for the record, which is what a rerun reads.
SNAPSHOT = "checkpoint_manager_snapshot.json"


def has_checkpoint(snapshot: Path) -> bool:
    try:  # read while Train may be rewriting it
        return bool(json.loads(snapshot.read_text())["checkpoint_results"])
    except (OSError, ValueError, KeyError):
        return False


DRIVER = """
import json, sys
from sweeps.run.tuner import run_plan
from tests.conftest import tiny_plan

published = run_plan(tiny_plan("lostnode", json.loads(sys.argv[1])))
print("RANKING " + json.dumps({r.value: [r.n, r.failed] for r in published.ranking}), flush=True)
"""


def test_a_node_lost_under_running_trials_ends_them_reruns_them_and_ranks_them(
    doomed, tmp_path, monkeypatch
):
    """The sweep is a driver process of its own (as `make sweep` is); this test is the
    cluster's operator: it kills the node, waits for the watchdog, adds the replacement."""
    import mlflow

    nodes, victim = doomed
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    env = {
        **os.environ,
        "RAY_ADDRESS": nodes.address,
        "MLFLOW_TRACKING_URI": uri,
        "OVAT_RESULTS": str(tmp_path / "shared"),
        "OVAT_DATA_DIR": str(tmp_path / "data"),
        "OVAT_WATCHDOG_FLOOR_S": "45",  # 600 s by default
        "OVAT_WATCHDOG_CHECK_S": "2",
        "PYTHONPATH": str(ROOT),
    }
    base = {
        "data.limit": 96,
        "train.epochs": EPOCHS,
        "resources.cpus_per_worker": 1,
        "resources.gpus_per_worker": 1,
        "resources.gpu_stand_in": "pinned_gpu",
    }
    raw = {"base": base, "vary": {"model.bottleneck": ["vq", "ffn"]}, "baseline": "vq"}
    client = mlflow.tracking.MlflowClient(uri)
    log = tmp_path / "driver.log"

    def retried() -> int:
        if not (tmp_path / "mlflow.db").is_file():
            return 0
        experiments = [e.experiment_id for e in client.search_experiments()]
        runs = client.search_runs(experiments, "tags.`ovat.role` = 'trial'")
        return sum("ovat.retried" in r.data.tags for r in runs)

    with open(log, "w") as out:
        driver = subprocess.Popen(
            [sys.executable, "-c", DRIVER, json.dumps(raw)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        registered = lambda: sum(map(has_checkpoint, (tmp_path / "shared").rglob(SNAPSHOT)))
        wait_until(lambda: registered() == 2, "both trials' first checkpoints", driver)
        nodes.remove_node(victim, allow_graceful=False)
        wait_until(lambda: retried() >= 2, "the watchdog ending both trials", driver)
        replacement = nodes.add_node(**NODE)
        driver.wait(timeout=WAIT_S)
    finally:
        driver.kill()
    text = log.read_text()
    assert driver.returncode == 0, text[-3000:]

    ranking = json.loads(text.split("RANKING ", 1)[1].splitlines()[0])
    assert ranking == {"vq": [1, 0], "ffn": [1, 0]}  # both ranked, neither failed
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, "tags.`ovat.role` = 'trial'")
    assert len(runs) == 2  # one MLflow run per trial: the rerun continued it
    for run in runs:
        assert run.info.status == "FINISHED"
        reason = run.data.tags["ovat.retried"]
        assert reason.startswith("watchdog: no result for ") and "no live node can hold" in reason
        assert run.data.tags["placement.node_id"] == replacement.node_id  # where it finished
        assert run.data.metrics["resumes"] >= 1  # from its checkpoint, not from scratch
        epochs = client.get_metric_history(run.info.run_id, "val_loss")
        assert sorted({m.step for m in epochs}) == list(range(1, EPOCHS + 1))
        assert run.data.metrics["test_loss"] > 0
    assert text.count("ended by the watchdog") == 2
