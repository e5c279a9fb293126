"""`vq`: the textbook VQ-VAE quantizer (van den Oord et al., 2017), the reference point."""

import torch
import torch.nn.functional as F
from torch import nn

from models.bottlenecks.base import BottleneckOutput, hard_code_stats
from models.config import ModelConfig


class VectorQuantizer(nn.Module):
    """Nearest entry by Euclidean distance, straight-through, codebook + beta * commitment loss."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        k = cfg.codebook_size
        self.codebook = nn.Embedding(k, cfg.embed_dim)
        nn.init.uniform_(self.codebook.weight, -1 / k, 1 / k)  # the paper's small init
        self.commitment = cfg.commitment

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Index of the closest codebook entry per token: (B, N, D) -> (B, N)."""
        codebook = self.codebook.weight  # (K, D)
        distances = (
            z.pow(2).sum(-1, keepdim=True) - 2 * z @ codebook.T + codebook.pow(2).sum(-1)
        )  # (B, N, K)
        return distances.argmin(dim=-1)

    def forward(self, z: torch.Tensor) -> BottleneckOutput:
        indices = self.nearest(z)
        q = self.codebook.weight[indices]  # (B, N, D)
        codebook_loss = F.mse_loss(q, z.detach())
        commitment_loss = F.mse_loss(z, q.detach())
        stats = hard_code_stats(indices, self.codebook.num_embeddings)
        aux = codebook_loss + self.commitment * commitment_loss
        return BottleneckOutput(z + (q - z).detach(), aux, stats)
