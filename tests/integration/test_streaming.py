"""The train split streamed by Ray Data (`data.stream=on`) for real: four trials of one sweep
under the session's Ray instance. On the prepared sample data, two are the same seed on one
worker (they must repeat each other bit for bit), one runs on two workers over a split that
does not divide among them (129 images: equal rows per worker, equal steps, no hang); the
fourth streams a prepared `imagefolder` tree of real JPEGs, the fifth the text windows of the
language model (`pysource`, the tiny GPT)."""

import math

import pytest

from data.registry import prepared_folder
from data.shards import read_manifest
from sweeps.define.plan import Trial
from tests.conftest import trials_sweep
from trainers.paths import data_dir
from trainers.presets import preset

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EPOCHS = 2


@pytest.fixture(scope="module")
def streamed_sweep(ray_session, prepared_tree, tmp_path_factory):
    folder = tmp_path_factory.mktemp("streamed")
    base = preset(
        "tiny",
        {
            "data.limit": 129,
            "data.stream": "on",
            "train.epochs": EPOCHS,
            "train.batch_size": 32,
            "train.log_every": 1,
            "resources.cpus_per_worker": 0.5,
        },
    )
    two = base.with_overrides({"resources.workers": 2})
    root, _, _ = prepared_tree
    tree = base.with_overrides(
        {"data.dataset": "imagefolder", "data.root": str(root), "data.limit": 0,
         "train.batch_size": 16}
    )  # fmt: skip
    text = base.with_overrides({"model.family": "gpt", "data.dataset": "pysource"})
    trials = (
        Trial(value="text", seed=0, config=text),
        Trial(value="one", seed=0, config=base),
        Trial(value="again", seed=0, config=base),
        Trial(value="two", seed=0, config=two),
        Trial(value="tree", seed=0, config=tree),
    )
    with trials_sweep(folder, "streamed", trials, "resources.workers", "one") as (
        published,
        client,
        trial_runs,
    ):
        train = read_manifest(prepared_folder(tree.data, data_dir()))["splits"]["train"]["count"]
        yield published, client, trial_runs, train


def test_streamed_trials_finish_and_are_ranked(streamed_sweep):
    published, client, runs, tree_images = streamed_sweep
    assert {row.value for row in published.ranking} == {"one", "again", "two", "tree", "text"}
    for value, run in runs.items():
        assert run.info.status == "FINISHED", value
        assert run.data.params["data.stream"] == "on"
        worst = math.log(256) if value == "text" else 1  # nats per byte; MSE of [0, 1] pixels
        assert 0 < run.data.metrics["test_loss"] < worst
        assert run.data.metrics["audit.untrained_params"] == 0
    # 129 images in batches of 32: 4 steps per epoch on one worker (the last 1 image dropped)
    one = client.get_metric_history(runs["one"].info.run_id, "train_loss_step")
    assert sorted(m.step for m in one) == list(range(1, 4 * EPOCHS + 1))
    # 129 text windows stream the same way: 4 steps of 32 an epoch
    text = client.get_metric_history(runs["text"].info.run_id, "train_loss_step")
    assert sorted(m.step for m in text) == list(range(1, 4 * EPOCHS + 1))
    # two workers get 64 rows each (one dropped to make them equal): 2 steps each per epoch
    two = client.get_metric_history(runs["two"].info.run_id, "train_loss_step")
    assert sorted(m.step for m in two) == list(range(1, 2 * EPOCHS + 1))
    # the imagefolder tree's prepared shards, streamed in batches of 16
    assert runs["tree"].data.params["data.dataset"] == "imagefolder"
    tree = client.get_metric_history(runs["tree"].info.run_id, "train_loss_step")
    assert sorted(m.step for m in tree) == list(range(1, tree_images // 16 * EPOCHS + 1))


def test_a_streamed_trial_on_one_worker_repeats_bit_for_bit(streamed_sweep):
    _, client, runs, _ = streamed_sweep
    one, again = runs["one"], runs["again"]
    assert one.data.tags["ovat.weights_hash"] == again.data.tags["ovat.weights_hash"]
    assert one.data.metrics["test_loss"] == again.data.metrics["test_loss"]
    curves = [
        [m.value for m in sorted(client.get_metric_history(r.info.run_id, "train_loss_step"),
                                 key=lambda m: m.step)]
        for r in (one, again)
    ]  # fmt: skip
    assert curves[0] == curves[1] and len(set(curves[0])) > 1  # the same batches, step by step


@pytest.mark.parametrize(("set_by_user", "seen"), [(None, "1"), ("3", "3")])
def test_the_job_plans_reads_with_one_footer_actor_unless_told_otherwise(
    ray_session, set_by_user, seen
):
    """ensure_ray gives every process of the job RAY_DATA_ENV (Ray Data's footer readers: 32
    fresh processes by default at every epoch's start); a value in the environment wins."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    name = "RAY_DATA_PARQUET_FOOTER_NUM_ACTORS"
    script = (
        "import os, ray\n"
        "from sweeps.run.cluster import ensure_ray\n"
        "ensure_ray()\n"
        f"print(ray.get(ray.remote(lambda: os.environ.get({name!r})).remote()))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env["RAY_ADDRESS"] = ray_session.get_runtime_context().gcs_address
    env.pop(name, None)
    if set_by_user:
        env[name] = set_by_user
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout  # fmt: skip
    assert out.strip().splitlines()[-1] == seen
