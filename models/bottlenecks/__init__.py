"""The bottleneck registry: one name, one factory; a new variant is a new file and one line here."""

from collections.abc import Callable

from torch import nn

from models.bottlenecks.amvq import ArgmaxVQ
from models.bottlenecks.base import BottleneckOutput
from models.bottlenecks.ffn import FeedForward
from models.bottlenecks.identity import Identity
from models.bottlenecks.smvq import SoftmaxVQ
from models.bottlenecks.softvq import SoftVQ
from models.bottlenecks.vq import VectorQuantizer
from models.config import ModelConfig

BOTTLENECKS: dict[str, Callable[[ModelConfig], nn.Module]] = {
    "softvq": SoftVQ,
    "amvq": ArgmaxVQ,
    "smvq": SoftmaxVQ,
    "vq": VectorQuantizer,
    "ffn": lambda cfg: FeedForward(cfg, dropout=0.0),
    "llmffn": lambda cfg: FeedForward(cfg, dropout=cfg.dropout),
    "identity": Identity,
}


class UnknownBottleneck(ValueError):
    pass


def build_bottleneck(cfg: ModelConfig) -> nn.Module:
    if cfg.bottleneck not in BOTTLENECKS:
        raise UnknownBottleneck(
            f"unknown bottleneck {cfg.bottleneck!r}; valid: {', '.join(sorted(BOTTLENECKS))}"
        )
    return BOTTLENECKS[cfg.bottleneck](cfg)


__all__ = ["BOTTLENECKS", "BottleneckOutput", "UnknownBottleneck", "build_bottleneck"]
