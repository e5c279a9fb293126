"""`amvq`: argmax VQ whose codebook learns through half of the output."""

import torch
from torch import nn

from models.bottlenecks.base import BottleneckOutput, hard_code_stats, no_loss
from models.config import ModelConfig


class ArgmaxVQ(nn.Module):
    """u = LayerNorm(z); q1 = E[argmax(u E^T)]; output (q1 + u + (q1 - u).detach()) / 2.

    q1 carries the gradient to E, the straight-through half carries it to the encoder.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.norm = nn.LayerNorm(cfg.embed_dim)
        self.codebook = nn.Embedding(cfg.codebook_size, cfg.embed_dim)  # E ~ N(0, 1)

    def forward(self, z: torch.Tensor) -> BottleneckOutput:
        u = self.norm(z)  # (B, N, D)
        codebook = self.codebook.weight  # (K, D)
        indices = (u @ codebook.T).argmax(dim=-1)  # (B, N)
        q1 = codebook[indices]  # (B, N, D)
        q2 = u + (q1 - u).detach()
        stats = hard_code_stats(indices, codebook.shape[0])
        return BottleneckOutput((q1 + q2) / 2, no_loss(z), stats)
