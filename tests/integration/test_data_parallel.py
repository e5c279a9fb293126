"""Data-parallel trials for real: two Ray Train workers (gloo, CPU) per trial, on a train split
that does not divide into global batches (129 images, 2 x 32), beside one worker of 64 on the
same seed, and a 2-worker trial that diverges (both ranks must agree to stop, or one would wait
forever in a collective)."""

import pytest

from sweeps.define.plan import Trial
from tests.conftest import trials_sweep
from trainers.followups import evaluate_run
from trainers.presets import preset

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EPOCHS = 2


@pytest.fixture(scope="module")
def parallel_sweep(ray_session, tmp_path_factory):
    folder = tmp_path_factory.mktemp("parallel")
    base = preset(
        "tiny",
        {
            "data.limit": 129,
            "train.epochs": EPOCHS,
            "train.log_every": 1,
            "resources.cpus_per_worker": 0.5,
        },
    )
    two = base.with_overrides({"resources.workers": 2, "train.batch_size": 32})
    one = base.with_overrides({"resources.workers": 1, "train.batch_size": 64})
    trials = (
        Trial(value="2x32", seed=0, config=two),
        Trial(value="1x64", seed=0, config=one),
        Trial(value="2x32-diverging", seed=0, config=two.with_overrides({"train.lr": 1e6})),
    )
    with trials_sweep(folder, "parallel", trials, "resources.workers", "1x64") as swept:
        yield swept


def test_a_two_worker_trial_with_unequal_shards_finishes_and_is_ranked(parallel_sweep):
    published, client, runs = parallel_sweep
    run = runs["2x32"]
    assert run.info.status == "FINISHED"
    assert run.data.params["resources.workers"] == "2"
    assert run.data.params["train.global_batch_size"] == "64"
    assert runs["1x64"].data.params["train.global_batch_size"] == "64"
    rows = {row.value: row for row in published.ranking}
    assert rows["2x32"].n == 1 and rows["1x64"].verdict == "baseline"
    # 129 images, global batches of 64: two steps per epoch on each rank, the 129th dropped
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train_loss_step")]
    assert sorted(steps) == list(range(1, 2 * EPOCHS + 1))
    assert run.data.metrics["audit.untrained_params"] == 0
    assert run.data.metrics["audit.frozen_changed"] == 0
    for value in ("2x32", "1x64"):  # the trial's rate: both ranks' 2 x 32 images a step
        metrics = runs[value].data.metrics
        trained = metrics["train_images_per_s"] * metrics["train_s"]
        assert trained == pytest.approx(2 * 64), value  # rank 0's alone were 64


def test_its_test_loss_is_the_whole_test_split_scored_again_in_one_process(parallel_sweep):
    _, _, runs = parallel_sweep
    run = runs["2x32"]
    rescored = evaluate_run(run.info.run_id)["metrics"]["test_loss"]
    # the ranks' shards of the test split (65 + 64 images, say) summed, then divided once
    assert rescored == pytest.approx(run.data.metrics["test_loss"], rel=1e-6)


def test_two_workers_of_32_train_as_one_worker_of_64(parallel_sweep):
    """Same seed: the same global batches with the same masks, and DDP's averaged gradient is
    the full batch's; they differ only in the order of float additions."""
    _, client, runs = parallel_sweep
    for metric in ("train_loss", "val_loss"):
        two = [m.value for m in client.get_metric_history(runs["2x32"].info.run_id, metric)]
        one = [m.value for m in client.get_metric_history(runs["1x64"].info.run_id, metric)]
        assert two == pytest.approx(one, rel=1e-4), metric
    assert runs["2x32"].data.metrics["test_loss"] == pytest.approx(
        runs["1x64"].data.metrics["test_loss"], rel=1e-4
    )


def test_a_diverging_two_worker_trial_stops_on_both_ranks_with_its_reason(parallel_sweep):
    published, _, runs = parallel_sweep
    run = runs["2x32-diverging"]
    assert run.info.status == "FAILED"
    assert run.data.tags["ovat.error"].startswith("diverged at epoch 1, step ")
    row = {r.value: r for r in published.ranking}["2x32-diverging"]
    assert (row.n, row.failed) == (0, 1)
