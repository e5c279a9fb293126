"""The train split streamed by Ray Data (`data.stream=on`) for real: six trials of one sweep
under the session's Ray instance. On the prepared sample data, two are the same seed on one
worker and two the same seed on two workers over a split that does not divide among them (129
images: equal rows per worker, equal steps, no hang); each pair must repeat itself bit for bit.
The fifth streams a prepared `imagefolder` tree of real JPEGs, the sixth the text windows of
the language model (`pysource`, the tiny GPT)."""

import math
import threading
from collections import Counter

import pytest

from bench.servers import processes, title
from data.registry import prepared_folder
from data.shards import read_manifest
from sweeps.define.plan import Trial
from tests.conftest import trials_sweep
from trainers.paths import data_dir
from trainers.presets import preset

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EPOCHS = 2


class RayProcesses(threading.Thread):
    """The most processes of each Ray title ("ray::RayTrainWorker": an actor's class) alive at
    once on this machine while it runs, from /proc every 0.2 s."""

    def __init__(self):
        super().__init__(daemon=True)
        self.most, self.halt = Counter(), threading.Event()

    def run(self):
        while not self.halt.wait(0.2):
            titles = Counter()
            for pid in processes():
                try:
                    name = title(pid)
                except (OSError, UnicodeDecodeError):
                    continue  # gone meanwhile
                if name.startswith("ray::"):
                    titles[name] += 1
            self.most |= titles  # the larger count of each


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
        Trial(value="two-again", seed=0, config=two),
        Trial(value="tree", seed=0, config=tree),
    )
    processes = RayProcesses()
    processes.start()
    try:
        with trials_sweep(folder, "streamed", trials, "resources.workers", "one") as (
            published,
            client,
            trial_runs,
        ):
            processes.halt.set()
            train = read_manifest(prepared_folder(tree.data, data_dir()))["splits"]["train"]
            yield published, client, trial_runs, train["count"], processes.most
    finally:
        processes.halt.set()


def test_streamed_trials_finish_and_are_ranked(streamed_sweep):
    published, client, runs, tree_images, _ = streamed_sweep
    assert {row.value for row in published.ranking} == {
        "one",
        "again",
        "two",
        "two-again",
        "tree",
        "text",
    }
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


@pytest.mark.parametrize("pair", [("one", "again"), ("two", "two-again")])
def test_a_streamed_trial_repeats_bit_for_bit_on_one_worker_and_on_two(streamed_sweep, pair):
    """Each rank's rows of an epoch depend on the seed, the epoch and the rank only (Ray Train's
    split handed blocks to whichever worker asked first: not repeatable on two workers)."""
    _, client, runs, _, _ = streamed_sweep
    one, again = (runs[value] for value in pair)
    assert one.data.tags["ovat.weights_hash"] == again.data.tags["ovat.weights_hash"]
    assert one.data.metrics["test_loss"] == again.data.metrics["test_loss"]
    curves = [
        [m.value for m in sorted(client.get_metric_history(r.info.run_id, "train_loss_step"),
                                 key=lambda m: m.step)]
        for r in (one, again)
    ]  # fmt: skip
    assert curves[0] == curves[1] and len(set(curves[0])) > 1  # the same batches, step by step


def test_a_streamed_trial_starts_no_process_to_hand_out_its_rows(streamed_sweep):
    """Each worker reads its own rows: Ray Train's split of a dataset would start a coordinator
    process (~100 MB) per dataset, and a streamed trial had one dataset per epoch."""
    *_, most = streamed_sweep
    assert most["ray::RayTrainWorker"] >= 2  # the sampler saw the two-worker trial
    assert most["ray::SplitCoordinator"] == 0
