"""`smvq`: softmax VQ, fully differentiable, codebook trained."""

import math

import torch
from torch import nn

from models.bottlenecks.base import BottleneckOutput, no_loss, soft_code_stats
from models.config import ModelConfig


class SoftmaxVQ(nn.Module):
    """u = LayerNorm(z); output softmax(u E^T / sqrt(d)) E: attention over a learned codebook."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.norm = nn.LayerNorm(cfg.embed_dim)
        self.codebook = nn.Embedding(cfg.codebook_size, cfg.embed_dim)  # E ~ N(0, 1)

    def forward(self, z: torch.Tensor) -> BottleneckOutput:
        u = self.norm(z)  # (B, N, D)
        codebook = self.codebook.weight  # (K, D)
        probs = torch.softmax(u @ codebook.T / math.sqrt(u.shape[-1]), dim=-1)  # (B, N, K)
        return BottleneckOutput(probs @ codebook, no_loss(z), soft_code_stats(probs))
