"""Named configs: a few settings under one name, applied over the defaults before an ablation's
base (`preset:` in an ablation file, `PRESET=` on the command line).

`tiny` is the debug model every test and benchmark smoke run uses (as torchtitan's debug model):
seconds per trial on a CPU, the same code path as the real thing.
"""

from typing import Any

from trainers.config import ConfigError, ExperimentConfig

PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "tiny": {
        "model.stem_channels": 8,
        "model.hidden_channels": 16,
        "model.res_channels": 4,
        "model.embed_dim": 8,
        "model.codebook_size": 32,
        "data.limit": 64,
        "train.epochs": 1,
        "train.batch_size": 32,
        "train.log_every": 0,
    },
}


def preset_overrides(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; valid: {', '.join(PRESETS)}")
    return PRESETS[name]


def preset(name: str, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """The named config, with `overrides` (dotted keys) on top."""
    return ExperimentConfig().with_overrides({**preset_overrides(name), **(overrides or {})})
