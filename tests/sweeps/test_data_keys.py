"""Trials share an object-store copy of their data exactly when they read the same prepared split
(no Ray instance: only the keys the runner would use), and the FLOPs the driver counts once per
model and data config instead of every trial counting them at start-up."""

from sweeps import ablation as ablations
from sweeps.runner import data_key, trial_payload
from trainers.config import ExperimentConfig
from trainers.flops import train_flops_per_image


def key(**data) -> str:
    return data_key(ExperimentConfig().with_overrides({f"data.{k}": v for k, v in data.items()}))


def test_every_setting_that_changes_the_prepared_data_changes_the_key(tmp_path):
    base = {"dataset": "imagefolder", "root": str(tmp_path)}
    keys = {
        key(**base),
        key(**base, protocol="holdout"),
        key(**base, split_seed=1),
        key(**base, resolution=64),
        key(**base, limit=10),
        key(dataset="imagefolder", root=str(tmp_path / "other")),
        key(),
    }
    assert len(keys) == 7


def test_settings_of_the_model_or_training_share_the_data(tmp_path):
    base = {"data.dataset": "imagefolder", "data.root": str(tmp_path)}
    one = ExperimentConfig().with_overrides(base)
    other = ExperimentConfig().with_overrides({**base, "model.bottleneck": "ffn", "train.seed": 3})
    assert data_key(one) == data_key(other)
    assert key(mask_ratio=0.25) == key()  # masks are drawn in the trial, from the same images


def test_the_driver_hands_each_trial_its_models_flops():
    base = ExperimentConfig().with_overrides({"data.resolution": 16, "data.limit": 8})
    specs = [
        ablations.TrialSpec(name, 0, base.with_overrides({"model.bottleneck": name}).to_flat())
        for name in ("vq", "identity")
    ]
    flops = [trial_payload(spec)["flops_per_image"] for spec in specs]
    assert flops == [train_flops_per_image(c.model, c.data) for c in map(config_of, specs)]
    assert flops[0] > flops[1]  # vq's distance matmuls: each trial gets its own model's count


def config_of(spec: ablations.TrialSpec) -> ExperimentConfig:
    return ExperimentConfig.from_flat(spec.config)
