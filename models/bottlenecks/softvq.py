"""`softvq`: the group's SoftQuantize, a VQ whose normal codebook is never trained."""

import math

import torch

from models.bottlenecks.base import BottleneckOutput, NormedCodebook, no_loss, soft_code_stats
from models.config import ModelConfig


class SoftVQ(NormedCodebook):
    """u = LayerNorm(z); q = softmax(u E^T / sqrt(d)) E; output u + (q - u).detach().

    The straight-through output sends no gradient to E, so E stays at its N(0, 1) draw and is
    registered frozen: the parameter counts then say honestly that only the LayerNorm learns.
    (The group's E was a trainable `nn.Embedding` that never got a gradient: the same values,
    in the same parameter order, LayerNorm first.)
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.codebook.weight.requires_grad_(False)

    def forward(self, z: torch.Tensor) -> BottleneckOutput:
        u, codebook = self.normed(z)
        probs = torch.softmax(u @ codebook.T / math.sqrt(u.shape[-1]), dim=-1)  # (B, N, K)
        q = probs @ codebook  # (B, N, D)
        return BottleneckOutput(u + (q - u).detach(), no_loss(z), soft_code_stats(probs))
