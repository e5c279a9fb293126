"""What the runner asks Ray for, from an ablation file: fractional GPUs pack trials per GPU."""

import pytest

from sweeps.define import ablation as ablations
from sweeps.errors import ResourceError
from sweeps.run.cluster import check_object_store, concurrency
from tests.conftest import tiny_plan
from trainers.config import ExperimentConfig
from trainers.trial import scaling_config, trial_resources


@pytest.fixture(scope="module")
def gpu_trials():
    return ablations.plan(ablations.load("bottleneck-gpu"), seeds=3).trials


def test_the_gpu_ablation_asks_a_quarter_gpu_and_two_cpus_per_trial(gpu_trials):
    assert len(gpu_trials) == 7 * 3
    for trial in gpu_trials:
        resources = trial.config.resources
        assert trial_resources(resources) == {"CPU": 2.0, "GPU": 0.25}
        scaling = scaling_config(resources)
        assert scaling.use_gpu and scaling.num_workers == 1
        assert scaling.resources_per_worker == {"CPU": 2.0, "GPU": 0.25}


@pytest.mark.parametrize(
    ("available", "at_once"),
    [
        ({"CPU": 64, "GPU": 8}, 32),  # four per GPU
        ({"CPU": 16, "GPU": 8}, 8),  # CPU-bound: 2 CPUs each
        ({"CPU": 2, "GPU": 0.25}, 1),
    ],
)
def test_trials_at_once_follow_the_scarcer_resource(gpu_trials, available, at_once):
    assert concurrency(gpu_trials, available) == at_once


def test_a_cluster_without_gpus_is_an_error_naming_the_shortfall(gpu_trials):
    with pytest.raises(ResourceError, match="one trial needs 0.25 GPU but the cluster has 0 GPU"):
        concurrency(gpu_trials, {"CPU": 64})


def test_a_cpu_ablation_asks_no_gpu():
    trials = ablations.plan(ablations.load("bottleneck")).trials
    resources = trials[0].config.resources
    assert trial_resources(resources) == {"CPU": 1.0}
    assert not scaling_config(resources).use_gpu
    assert concurrency(trials, {"CPU": 2}) == 2


def test_trials_of_different_sizes_never_admit_more_than_fit(gpu_trials):
    varied = ablations.Ablation.from_dict(
        "sizes", {"vary": {"resources.gpus_per_worker": [0.25, 1.0]}, "baseline": 0.25}
    )
    trials = ablations.plan(varied).trials
    assert concurrency(trials, {"CPU": 8, "GPU": 1}) == 1  # four small ones would fit, one large
    assert concurrency(trials, {"CPU": 8, "GPU": 4}) == 4
    with pytest.raises(ResourceError, match="needs 1 GPU but the cluster has 0.5"):
        concurrency(trials, {"CPU": 8, "GPU": 0.5})


def test_a_stand_in_resource_replaces_gpu_and_the_trial_trains_on_cpu():
    cfg = ExperimentConfig().with_overrides(
        {"resources.gpus_per_worker": "0.5", "resources.gpu_stand_in": "fake_gpu"}
    )
    assert trial_resources(cfg.resources) == {"CPU": 1.0, "fake_gpu": 0.5}
    scaling = scaling_config(cfg.resources)
    assert scaling.resources_per_worker == {"CPU": 1.0, "fake_gpu": 0.5}
    assert not scaling.use_gpu and not cfg.resources.use_gpu


def test_a_pinned_trial_selects_its_node_by_id_label():
    scaling = scaling_config(ExperimentConfig().resources, node="0f3a")
    assert scaling.label_selector == {"ray.io/node-id": "0f3a"}
    assert scaling_config(ExperimentConfig().resources).label_selector is None


def test_the_groups_protocol_is_refused_without_four_gpus_naming_what_is_missing():
    plan = ablations.plan(ablations.load("bottleneck-group"), {"data.root": "/data/imagenet"})
    assert trial_resources(plan.trials[0].config.resources) == {"CPU": 16.0, "GPU": 4.0}
    message = "one trial needs 16 CPU and 4 GPU but the cluster has 2 CPU and 0 GPU"
    with pytest.raises(ResourceError, match=message):
        concurrency(plan.trials, {"CPU": 2.0})
    assert concurrency(plan.trials, {"CPU": 64.0, "GPU": 8.0}) == 2


def node(store_gb: float, alive: bool = True) -> dict:
    return {"Alive": alive, "Resources": {"CPU": 2.0, "object_store_memory": store_gb * 1e9}}


def test_data_that_does_not_fit_the_object_store_is_refused_naming_the_fixes(tmp_path, monkeypatch):
    from data.config import DataConfig
    from tests.data import trees

    monkeypatch.setenv("OVAT_DATA_DIR", str(tmp_path / "data"))
    trees.imagefolder_tree(tmp_path / "tree", per_class=20)  # 64 + 12 + 9 files listed
    cfg = DataConfig(dataset="imagefolder", root=str(tmp_path / "tree"), resolution=256)
    need = 85 * 3 * 256 * 256  # 16.7 MB, from the listing: nothing is decoded
    check_object_store([cfg, cfg], [node(need / 1e9 + 0.001)])  # one copy for both trials
    with pytest.raises(ResourceError) as refused:
        check_object_store([cfg], [node(0.01), node(0.012, alive=False)])
    message = str(refused.value)
    assert "data (0.0167 GB of uint8 pixels: imagefolder at 256 px) does not fit" in message
    for fix in ("RES=", "data.limit=", "(0.01 GB on the smallest node, which holds a copy)"):
        assert fix in message
    with pytest.raises(ResourceError):  # a large head does not make a small worker's room
        check_object_store([cfg], [node(1.0), node(0.01)])
    check_object_store([DataConfig(dataset="imagefolder", root=cfg.root, resolution=256, limit=10)],
                       [node(0.01)])  # fmt: skip
    assert not (tmp_path / "data").exists()  # nothing was prepared to find this out


def test_a_streamed_train_split_leaves_only_val_and_test_in_the_object_store(tmp_path, monkeypatch):
    from data.config import DataConfig
    from sweeps.run.inputs import data_key, streamed
    from tests.data import trees
    from trainers.streaming import READ_CPUS, READ_TASKS, stream_cpus

    monkeypatch.setenv("OVAT_DATA_DIR", str(tmp_path / "data"))
    trees.imagefolder_tree(tmp_path / "tree", per_class=20)  # 64 train, 12 val, 9 test listed
    pixels = 3 * 256 * 256
    auto = DataConfig(dataset="imagefolder", root=str(tmp_path / "tree"), resolution=256)
    # auto: streamed when the train split is over half the smallest node's object store
    assert streamed([auto], 2 * 64 * pixels + 1) == frozenset()
    assert streamed([auto], 2 * 64 * pixels - 1) == {data_key(auto)}
    off = DataConfig(dataset="imagefolder", root=auto.root, resolution=256, stream="off")
    on = DataConfig(dataset="imagefolder", root=auto.root, resolution=256, stream="on")
    assert streamed([off, on], 1.0) == {data_key(on)}
    store = node((12 + 9) * pixels / 1e9 + 0.0001)  # val and test fit, the train split does not
    check_object_store([on], [store], streams=frozenset({data_key(on)}))
    with pytest.raises(ResourceError, match="data.stream=on"):
        check_object_store([off], [store])
    trials = tiny_plan("s", {"vary": {"model.bottleneck": ["vq"]}}, {"data.stream": "on"}).trials
    keys = frozenset({data_key(trials[0].config.data)})
    assert concurrency(trials, {"CPU": 2.0}) == 2  # 1 CPU each
    assert concurrency(trials, {"CPU": 2.0}, keys) == 1  # 1 + stream_cpus(1) each
    assert concurrency(trials, {"CPU": 2 * (1 + stream_cpus(1))}, keys) == 2
    # reads for the epoch in training and for the next one's look-ahead, at once; a trial's
    # READ_TASKS reads per stream are shared among its workers, at least one each
    assert stream_cpus(1) == READ_CPUS * READ_TASKS * 2 == 1.0
    assert stream_cpus(2) == 1.0 and stream_cpus(4) == 2.0
    four = tiny_plan("s", {"vary": {"model.bottleneck": ["vq"]}},
                     {"data.stream": "on", "resources.workers": 4}).trials  # fmt: skip
    assert concurrency(four, {"CPU": 2 * (4 + 2.0)}, keys) == 2
    assert concurrency(four, {"CPU": 2 * (4 + 2.0) - 0.5}, keys) == 1


def test_auto_and_off_left_in_memory_share_one_copy(tmp_path, monkeypatch):
    from data.config import DataConfig
    from sweeps.run.inputs import copy_key, data_key, streamed
    from tests.data import trees

    monkeypatch.setenv("OVAT_DATA_DIR", str(tmp_path / "data"))
    trees.imagefolder_tree(tmp_path / "tree", per_class=20)  # 85 images listed
    auto = DataConfig(dataset="imagefolder", root=str(tmp_path / "tree"), resolution=256)
    off = DataConfig(dataset="imagefolder", root=auto.root, resolution=256, stream="off")
    on = DataConfig(dataset="imagefolder", root=auto.root, resolution=256, stream="on")
    one_copy = 85 * 3 * 256 * 256
    streams = streamed([auto, off, on], 1e12)  # auto stays in memory on a large store
    assert streams == {data_key(on)}
    assert copy_key(auto, streams) == copy_key(off, streams) != copy_key(on, streams)
    check_object_store([auto, off], [node(one_copy / 1e9 + 0.001)], streams=streams)
    with pytest.raises(ResourceError):  # the streamed variant's val and test come on top
        check_object_store([auto, off, on], [node(one_copy / 1e9 + 0.001)], streams=streams)


def test_a_resumed_plan_streams_as_its_sweep_started_whatever_the_cluster_is_now(
    tmp_path, monkeypatch
):
    import dataclasses

    from sweeps.define.plan import SweepPlan
    from sweeps.run.inputs import data_key, plan_streams
    from tests.data import trees

    monkeypatch.setenv("OVAT_DATA_DIR", str(tmp_path / "data"))
    trees.imagefolder_tree(tmp_path / "tree", per_class=20)
    overrides = {"data.dataset": "imagefolder", "data.root": str(tmp_path / "tree")}
    plan = tiny_plan("s", {"vary": {"model.bottleneck": ["vq", "ffn"]}}, overrides)
    small, large = 1.0, 1e12  # object-store bytes: the split streams on the first only
    key = data_key(plan.base.data)
    assert plan_streams(plan, small) == {key} and plan_streams(plan, large) == frozenset()
    started = dataclasses.replace(plan, streamed=plan_streams(plan, small))
    resumed = SweepPlan.load(started.save(tmp_path / "plan.json"))
    assert resumed == started
    assert plan_streams(resumed, large) == {key}  # a resumed trial keeps its data path
    # a plan.json saved before the choice was kept: decided again, as before
    assert plan_streams(SweepPlan.load(plan.save(tmp_path / "old.json")), large) == frozenset()
