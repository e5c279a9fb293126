"""`softvq`: the group's SoftQuantize, a VQ whose normal codebook is never trained."""

import math

import torch
from torch import nn

from models.bottlenecks.base import BottleneckOutput, no_loss, soft_code_stats
from models.config import ModelConfig


class SoftVQ(nn.Module):
    """u = LayerNorm(z); q = softmax(u E^T / sqrt(d)) E; output u + (q - u).detach().

    The straight-through output sends no gradient to E, so E stays at its N(0, 1) draw and is
    registered frozen: the parameter counts then say honestly that only the LayerNorm learns.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.norm = nn.LayerNorm(cfg.embed_dim)
        codebook = torch.randn(cfg.codebook_size, cfg.embed_dim)
        self.codebook = nn.Parameter(codebook, requires_grad=False)

    def forward(self, z: torch.Tensor) -> BottleneckOutput:
        u = self.norm(z)  # (B, N, D)
        probs = torch.softmax(u @ self.codebook.T / math.sqrt(u.shape[-1]), dim=-1)  # (B, N, K)
        q = probs @ self.codebook  # (B, N, D)
        return BottleneckOutput(u + (q - u).detach(), no_loss(z), soft_code_stats(probs))
