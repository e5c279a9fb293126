"""A real multi-node Ray cluster on this machine: a head and two worker nodes on loopback, each
worker with one `fake_gpu`, a custom resource standing in for a GPU (trials train on CPU).

A one-trial sweep runs on it, then the placement probe of that trial: the same-seed reruns are
pinned to different nodes (by node id: the nodes share one IP) and repeat the source run bit
for bit, the across-seed reruns go to the first node, and nothing goes to the head, which has
no `fake_gpu`. The nodes' worker processes import ovat from the installed project, and every
trial's checkpoint lands under the one storage path they share (OVAT_RESULTS).

Its own Ray cluster cannot share a process with the integration tests' Ray instance, so this
runs in its own pytest process: `make test-cluster` (which `.ci/run` runs after `make test`).
"""

import pytest

pytestmark = [pytest.mark.cluster, pytest.mark.integration]

MIB = 2**20


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    import ray
    from ray.cluster_utils import Cluster

    nodes = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "object_store_memory": 150 * MIB},
    )
    workers = [
        nodes.add_node(num_cpus=2, resources={"fake_gpu": 1}, object_store_memory=150 * MIB)
        for _ in range(2)
    ]
    nodes.wait_for_nodes()
    ray.init(address=nodes.address, configure_logging=False, log_to_driver=False)
    yield {w.node_id for w in workers}
    ray.shutdown()
    nodes.shutdown()


def test_probe_spreads_same_seed_reruns_over_nodes_and_checkpoints_to_shared_storage(
    cluster, tmp_path, monkeypatch
):
    import mlflow

    from sweeps.run.probe import run_probe
    from sweeps.run.tuner import run_plan
    from tests.conftest import tiny_plan

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setenv("OVAT_RESULTS", str(tmp_path / "shared"))
    monkeypatch.setenv("OVAT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    base = {
        "data.limit": 96,
        "resources.cpus_per_worker": 0.5,
        "resources.gpus_per_worker": 0.5,  # two trials per fake GPU at once
        "resources.gpu_stand_in": "fake_gpu",
    }
    raw = {"base": base, "vary": {"model.bottleneck": ["vq"]}, "baseline": "vq"}
    run_plan(tiny_plan("multinode", raw))
    client = mlflow.tracking.MlflowClient()
    experiments = [e.experiment_id for e in client.search_experiments()]
    [source] = client.search_runs(experiments, "tags.`ovat.role` = 'trial'")
    assert source.data.tags["placement.node_id"] in cluster

    text = run_probe(source.info.run_id, repeats=2)
    runs = [
        r
        for r in client.search_runs(experiments, "tags.`ovat.role` = 'trial'")
        if r.data.tags.get("ovat.source_run") == source.info.run_id
    ]
    assert len(runs) == 4 and all(r.info.status == "FINISHED" for r in runs)
    same = [r for r in runs if r.data.tags["ovat.probe"] == "same-seed"]
    across = [r for r in runs if r.data.tags["ovat.probe"] == "across-seed"]
    nodes_of = lambda group: {r.data.tags["placement.node_id"] for r in group}
    assert nodes_of(same) == cluster  # one rerun on each worker node, none on the head
    assert len(nodes_of(across)) == 1 and nodes_of(across) < cluster
    assert len({r.data.tags["placement.node_ip"] for r in runs}) == 1  # one IP: ids tell apart
    # on two nodes, the same seed repeats the source run bit for bit; other seeds differ
    assert {r.data.tags["ovat.weights_hash"] for r in same} == {
        source.data.tags["ovat.weights_hash"]
    }
    assert len({r.data.tags["ovat.weights_hash"] for r in across}) == 2
    assert "| same-seed | 2 |" in text and "| 0 | 2/2 |" in text
    variance = next(line for line in text.splitlines() if line.startswith("| across-seed | 2 |"))
    assert float(variance.split("|")[4]) > 0
    for run in runs:
        assert run.data.params["resources.gpu_stand_in"] == "fake_gpu"
        assert run.data.tags["placement.device"] == "cpu" and run.data.tags["placement.torch"]
        assert len(run.data.tags["ovat.weights_hash"]) == 16
    checkpoints = list((tmp_path / "shared").rglob("checkpoint_*"))
    assert len({c.parent for c in checkpoints}) == 5  # every trial's, in the shared path
