"""Transplant: a trained model with its bottleneck replaced by a fresh, untrained one.

The group's case: the trained encoder/decoder of an `llmffn` run around an untrained
normal-codebook VQ (`softvq`). Every weight outside `bottleneck.` is copied bit for bit.
"""

import torch

from models.autoencoder import Autoencoder
from trainers.config import ConfigError, ExperimentConfig

BOTTLENECK_PREFIX = "bottleneck."


def transplant(source: Autoencoder, cfg: ExperimentConfig, seed: int) -> Autoencoder:
    """A new model built from cfg (its bottleneck freshly seeded) with source's other weights."""
    torch.manual_seed(seed)
    target = Autoencoder(cfg.model)
    kept = {k: v for k, v in source.state_dict().items() if not k.startswith(BOTTLENECK_PREFIX)}
    wanted = {k: v for k, v in target.state_dict().items() if not k.startswith(BOTTLENECK_PREFIX)}
    mismatched = [
        f"{k} {tuple(kept[k].shape)} -> {tuple(v.shape)}"
        for k, v in wanted.items()
        if k in kept and kept[k].shape != v.shape
    ]
    missing = sorted(set(wanted) ^ set(kept))
    if mismatched or missing:
        detail = "; ".join(mismatched + [f"{k} only in one model" for k in missing])
        raise ConfigError(f"cannot transplant: the models differ outside the bottleneck: {detail}")
    target.load_state_dict(kept, strict=False)
    return target
