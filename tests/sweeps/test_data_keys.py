"""Trials share an object-store copy of their data exactly when they read the same prepared split
(no Ray instance: only the keys the runner would use), and the FLOPs the driver counts once per
model and data config instead of every trial counting them at start-up."""

from sweeps.run.inputs import data_key, flops_per_image
from trainers.config import ExperimentConfig
from trainers.flops import train_flops_per_image


def key(**data) -> str:
    overrides = {f"data.{k}": v for k, v in data.items()}
    return data_key(ExperimentConfig().with_overrides(overrides).data)


def test_every_setting_that_changes_the_prepared_data_changes_the_key(tmp_path):
    base = {"dataset": "imagefolder", "root": str(tmp_path)}
    keys = {
        key(**base),
        key(**base, protocol="holdout"),
        key(**base, split_seed=1),
        key(**base, resolution=64),
        key(**base, limit=10),
        key(**base, stream="on"),  # val and test only in the object store
        key(dataset="imagefolder", root=str(tmp_path / "other")),
        key(),
    }
    assert len(keys) == 8


def test_settings_of_the_model_or_training_share_the_data(tmp_path):
    base = {"data.dataset": "imagefolder", "data.root": str(tmp_path)}
    one = ExperimentConfig().with_overrides(base)
    other = ExperimentConfig().with_overrides({**base, "model.bottleneck": "ffn", "train.seed": 3})
    assert data_key(one.data) == data_key(other.data)
    assert key(mask_ratio=0.25) == key()  # masks are drawn in the trial, from the same images


def test_the_driver_counts_each_models_flops_once():
    base = ExperimentConfig().with_overrides({"data.resolution": 16, "data.limit": 8})
    configs = [base.with_overrides({"model.bottleneck": name}) for name in ("vq", "identity")]
    flops = [flops_per_image(c.model, c.data) for c in configs]
    assert flops == [train_flops_per_image(c.model, c.data) for c in configs]
    assert flops[0] > flops[1]  # vq's distance matmuls: each trial gets its own model's count
    hits = flops_per_image.cache_info().hits
    flops_per_image(configs[0].model, configs[0].data)
    assert flops_per_image.cache_info().hits == hits + 1
