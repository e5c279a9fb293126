"""Transplant: a trained model with its bottleneck replaced by a fresh, untrained one.

The group's case: the trained encoder/decoder of an `llmffn` run around an untrained
normal-codebook VQ (`softvq`); in a GPT, every block's FFN slot replaced at once. Every weight
outside a bottleneck (`bottleneck.*`, `blocks.<i>.bottleneck.*`) is copied bit for bit.
"""

import torch

from models.registry import build_model, is_bottleneck
from trainers.config import ConfigError, ExperimentConfig


def transplant(source: torch.nn.Module, cfg: ExperimentConfig, seed: int) -> torch.nn.Module:
    """A new model built from cfg (its bottleneck freshly seeded) with source's other weights."""
    torch.manual_seed(seed)
    target = build_model(cfg.model)
    kept = {k: v for k, v in source.state_dict().items() if not is_bottleneck(k)}
    wanted = {k: v for k, v in target.state_dict().items() if not is_bottleneck(k)}
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
