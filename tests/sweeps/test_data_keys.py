"""Trials share an object-store copy of their data exactly when they read the same prepared split
(no Ray instance: only the keys the runner would use)."""

from sweeps.runner import data_key
from trainers.config import ExperimentConfig


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
