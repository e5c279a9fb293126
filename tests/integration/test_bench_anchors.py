"""The benchmarks' anchors do the work they stand for: the plain Tune script trains every trial
and logs it to MLflow, the bare loop trains in a Ray task of the trial's CPUs."""

import mlflow
import pytest

from bench.startup import plain_sweep
from tests.conftest import tiny_plan

pytestmark = pytest.mark.integration


def test_the_plain_script_trains_and_logs_every_trial(ray_session, workspace):
    plan = tiny_plan("plain", {"vary": {"model.bottleneck": ["vq", "identity"]}, "seeds": 1},
                     {"train.epochs": 2, "data.limit": 32})  # fmt: skip
    seconds = plain_sweep(plan, str(workspace / "tune"))
    assert seconds > 0
    client = mlflow.tracking.MlflowClient()
    experiment = client.get_experiment_by_name("plain-tune")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 2 and {r.info.status for r in runs} == {"FINISHED"}
    for run in runs:
        losses = client.get_metric_history(run.info.run_id, "train_loss")
        assert len(losses) == 2 and all(0 < point.value < 10 for point in losses)


def test_the_bare_loop_anchor_trains_every_epoch_in_a_ray_task(ray_session, workspace):
    from bench.training import bare_in_ray_task

    rates = bare_in_ray_task({"train.epochs": 2, "data.limit": 64, "train.batch_size": 32})
    assert len(rates) == 2 and all(rate > 0 for rate in rates)


def test_bench_gpu_streams_every_batch_and_times_its_wait(ray_session):
    """`make bench-gpu`'s streaming section, on the CPU at a tiny size (figures mean nothing)."""
    import torch

    from bench.gpu import streamed_wait
    from trainers.fastpath import PLAIN

    figures = streamed_wait(PLAIN, resolution=16, batch=4, images=64, device=torch.device("cpu"))
    assert 0 <= figures["wait_share"] < 1 and figures["images_per_s"] > 0
