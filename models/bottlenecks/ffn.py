"""`ffn` and `llmffn`: an LLM feed-forward block in place of the quantizer."""

import torch
from torch import nn

from models.bottlenecks.base import BottleneckOutput, no_loss
from models.config import ModelConfig


class FeedForward(nn.Module):
    """Linear(d -> K), GELU (exact), Linear(K -> d), then Dropout(p); the output replaces z.

    The hidden width K is the codebook size, as in the group's FFN (`n_embed`): a sweep over
    `model.codebook_size` widens the FFN as theirs did, and at the defaults the FFN has twice
    the VQ codebook's parameters (their "VQ matches FFN with half the parameters")."""

    def __init__(self, cfg: ModelConfig, dropout: float):
        super().__init__()
        hidden = cfg.codebook_size
        self.net = nn.Sequential(
            nn.Linear(cfg.embed_dim, hidden),
            nn.GELU(),
            nn.Linear(hidden, cfg.embed_dim),
            nn.Dropout(dropout),
        )

    def forward(self, z: torch.Tensor) -> BottleneckOutput:
        return BottleneckOutput(self.net(z), no_loss(z), {})
