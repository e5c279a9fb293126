"""Choosing what a fine-tune may change: parameters by name pattern, everything else frozen."""

import fnmatch

from torch import nn

from trainers.config import ConfigError

NONE = "none"  # TRAIN=none: evaluate only


def parse_patterns(text: str) -> list[str]:
    """'bottleneck.norm.*,decoder.*' -> ['bottleneck.norm.*', 'decoder.*']; 'none' -> []."""
    patterns = [p.strip() for p in text.split(",") if p.strip()]
    return [] if patterns == [NONE] else patterns


def select_trainable(model: nn.Module, patterns: list[str]) -> list[str]:
    """Make exactly the parameters matching a pattern trainable; returns their names.

    A pattern that matches nothing is an error listing the parameter names, since a typo would
    otherwise fine-tune nothing and look like a result.
    """
    names = [name for name, _ in model.named_parameters()]
    for pattern in patterns:
        if not fnmatch.filter(names, pattern):
            raise ConfigError(
                f"TRAIN pattern {pattern!r} matches no parameter; names: {', '.join(names)}"
            )
    chosen = []
    for name, param in model.named_parameters():
        param.requires_grad = any(fnmatch.fnmatchcase(name, p) for p in patterns)
        if param.requires_grad:
            chosen.append(name)
    return chosen
