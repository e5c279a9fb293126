import pytest

from trainers.config import ConfigError, ExperimentConfig, valid_keys


def test_config_round_trips_through_mlflow_strings():
    cfg = ExperimentConfig().with_overrides(
        {"model.bottleneck": "llmffn", "train.lr": 1e-3, "train.deterministic": True}
    )
    as_strings = {key: str(value) for key, value in cfg.to_flat().items()}
    assert ExperimentConfig.from_flat(as_strings) == cfg
    assert set(cfg.to_flat()) == set(valid_keys())


def test_overrides_parse_by_field_type():
    cfg = ExperimentConfig().with_overrides({"train.epochs": "4", "data.mask_ratio": "0.25"})
    assert cfg.train.epochs == 4 and cfg.data.mask_ratio == 0.25


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"train.lr": "abc"}, "train.lr: expected float, got 'abc'"),
        ({"train.epochs": "-1"}, "train.epochs must be >= 1, got -1"),
        ({"train.batch_size": 0}, "train.batch_size must be >= 1, got 0"),
        ({"train.epochs": 1.5}, "train.epochs: expected int, got 1.5"),
        ({"data.mask_ratio": "1.5"}, "data.mask_ratio must be in \\[0, 1\\), got 1.5"),
        ({"train.deterministic": "maybe"}, "train.deterministic: expected bool"),
        ({"model.bottleneck": "vqq"}, "unknown model.bottleneck 'vqq'; valid: amvq, ffn"),
        ({"data.dataset": "imagenot"}, "unknown dataset 'imagenot'; valid: imagefolder, imagenet,"),
        ({"data.protocol": "80/20"}, "data.protocol must be one of holdout, official, random-sp"),
        ({"data.resize": "stretch"}, "data.resize must be one of crop, squash, got 'stretch'"),
        ({"data.stream": "yes"}, "data.stream must be one of auto, on, off, got 'yes'"),
        ({"model.residual": "post"}, "model.residual must be one of group, preact, got 'post'"),
        ({"train.matmul_precision": "low"}, "train.matmul_precision must be one of highest, high"),
        ({"trian.lr": 1}, "unknown config key 'trian.lr'; valid: model.bottleneck"),
        ({"resources.cpus_per_worker": "0"}, "resources.cpus_per_worker must be > 0, got 0.0"),
        ({"resources.workers": "0"}, "resources.workers must be >= 1, got 0"),
        ({"train.log_every": "-5"}, "train.log_every must be >= 0, got -5"),
    ],
)
def test_bad_overrides_name_the_key_and_what_is_valid(override, message):
    with pytest.raises(ConfigError, match=message):
        ExperimentConfig().with_overrides(override)


@pytest.mark.parametrize(("cpus", "threads"), [(0.25, 1), (1, 1), (1.5, 1), (2, 2)])
def test_fractional_cpus_pack_trials_but_a_worker_keeps_at_least_one_thread(cpus, threads):
    cfg = ExperimentConfig().with_overrides({"resources.cpus_per_worker": str(cpus)})
    assert cfg.resources.cpus_per_worker == cpus and cfg.resources.threads == threads
