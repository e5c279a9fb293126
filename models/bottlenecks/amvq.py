"""`amvq`: argmax VQ whose codebook learns through half of the output."""

import torch

from models.bottlenecks.base import BottleneckOutput, NormedCodebook, hard_code_stats, no_loss


class ArgmaxVQ(NormedCodebook):
    """u = LayerNorm(z); q1 = E[argmax(u E^T)]; output (q1 + u + (q1 - u).detach()) / 2.

    q1 carries the gradient to E, the straight-through half carries it to the encoder.
    """

    def forward(self, z: torch.Tensor) -> BottleneckOutput:
        u, codebook = self.normed(z)
        indices = (u @ codebook.T).argmax(dim=-1)  # (B, N)
        q1 = codebook[indices]  # (B, N, D)
        q2 = u + (q1 - u).detach()
        stats = hard_code_stats(indices, codebook.shape[0])
        return BottleneckOutput((q1 + q2) / 2, no_loss(z), stats)
