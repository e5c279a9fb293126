"""What a sweep refuses, and how its run ends when it fails before any trial: on the shared Ray
instance (2 CPUs, no GPU), with no trial ever started."""

import mlflow
import pytest

from sweeps.cli import main
from tests.conftest import tiny_plan

pytestmark = pytest.mark.integration


def runs(workspace):
    client = mlflow.tracking.MlflowClient(f"sqlite:///{workspace}/mlflow.db")
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


def test_the_groups_protocol_is_refused_here_in_one_line_before_anything_is_written(
    ray_session, workspace, capsys
):
    from tests.data import trees

    trees.imagenet_tree(workspace / "imagenet", per_class=2)
    code = main(["sweep", "bottleneck-group", "--root", str(workspace / "imagenet")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    refusal = (
        "ovat: error: one trial needs 16 CPU and 4 GPU but the cluster has 2 CPU and 0 GPU; "
        "lower resources.* or add nodes"
    )
    assert err.strip().splitlines() == [refusal]
    assert runs(workspace) == [] and not list(workspace.rglob("plan.json"))  # no sweep began


def test_a_sweep_that_fails_before_its_trials_ends_its_run_failed_with_the_reason(
    ray_session, workspace, monkeypatch
):
    import sweeps.run.tuner

    def put_fails(trials, streams=frozenset()):
        raise MemoryError("ray.put: object store full")

    monkeypatch.setattr(sweeps.run.tuner, "trial_inputs", put_fails)
    with pytest.raises(MemoryError):
        sweeps.run.tuner.run_plan(tiny_plan("broken", {"vary": {"model.bottleneck": ["vq"]}}))
    [parent] = runs(workspace)
    assert parent.info.status == "FAILED"
    assert parent.data.tags["ovat.error"] == "MemoryError: ray.put: object store full"
    assert parent.data.tags["ovat.status"] == "failed"
