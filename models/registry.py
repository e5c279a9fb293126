"""The model-family registry: `model.family` names the network the bottleneck sits in."""

from collections.abc import Callable

from torch import nn

from models.autoencoder import Autoencoder
from models.config import FAMILIES, ModelConfig
from models.gpt import GPT

MODELS: dict[str, Callable[[ModelConfig], nn.Module]] = {"autoencoder": Autoencoder, "gpt": GPT}
assert set(MODELS) == set(FAMILIES), "models.config.FAMILIES and MODELS must name the same"


def build_model(cfg: ModelConfig) -> nn.Module:
    """The family's network with cfg's bottleneck (ModelConfig has checked the family)."""
    return MODELS[cfg.family](cfg)


def is_bottleneck(name: str) -> bool:
    """A parameter of a bottleneck: the autoencoder's one, or any GPT block's FFN slot."""
    return name.startswith("bottleneck.") or ".bottleneck." in name


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Total, trainable and frozen parameters, and the bottlenecks' share of the total."""
    named = list(model.named_parameters())
    total = sum(p.numel() for _, p in named)
    trainable = sum(p.numel() for _, p in named if p.requires_grad)
    return {
        "params_total": total,
        "params_trainable": trainable,
        "params_frozen": total - trainable,
        "params_bottleneck": sum(p.numel() for name, p in named if is_bottleneck(name)),
    }
