"""`ffn` and `llmffn`: an LLM feed-forward block in place of the quantizer."""

import torch
from torch import nn

from models.bottlenecks.base import BottleneckOutput, no_loss
from models.config import ModelConfig


class FeedForward(nn.Module):
    """Linear(d -> mult*d), GELU, Linear(mult*d -> d), then Dropout(p); the output replaces z."""

    def __init__(self, cfg: ModelConfig, dropout: float):
        super().__init__()
        hidden = cfg.ffn_mult * cfg.embed_dim
        self.net = nn.Sequential(
            nn.Linear(cfg.embed_dim, hidden),
            nn.GELU(),
            nn.Linear(hidden, cfg.embed_dim),
            nn.Dropout(dropout),
        )

    def forward(self, z: torch.Tensor) -> BottleneckOutput:
        return BottleneckOutput(self.net(z), no_loss(z), {})
