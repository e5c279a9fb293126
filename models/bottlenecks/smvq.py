"""`smvq`: softmax VQ, fully differentiable, codebook trained."""

import math

import torch

from models.bottlenecks.base import BottleneckOutput, NormedCodebook, no_loss, soft_code_stats


class SoftmaxVQ(NormedCodebook):
    """u = LayerNorm(z); output softmax(u E^T / sqrt(d)) E: attention over a learned codebook."""

    def forward(self, z: torch.Tensor) -> BottleneckOutput:
        u, codebook = self.normed(z)
        probs = torch.softmax(u @ codebook.T / math.sqrt(u.shape[-1]), dim=-1)  # (B, N, K)
        return BottleneckOutput(probs @ codebook, no_loss(z), soft_code_stats(probs))
