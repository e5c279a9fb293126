"""The one interface every bottleneck keeps, so the autoencoder never knows which it holds."""

from typing import NamedTuple

import torch
from torch import nn

from models.config import ModelConfig


class BottleneckOutput(NamedTuple):
    """Tokens for the decoder, a loss to add (0 where none) and detached stats for logging."""

    z: torch.Tensor  # (B, N, D), same shape as the input tokens
    aux_loss: torch.Tensor  # scalar
    stats: dict[str, torch.Tensor]  # scalars, detached


class NormedCodebook(nn.Module):
    """The group's quantizers' shared parts, in their parameter order: a LayerNorm of the
    tokens, then a codebook E (K, D) drawn from N(0, 1) as their `nn.Embedding` was."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.norm = nn.LayerNorm(cfg.embed_dim)
        self.codebook = nn.Embedding(cfg.codebook_size, cfg.embed_dim)

    def normed(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(u = LayerNorm(z) (B, N, D), E (K, D))."""
        return self.norm(z), self.codebook.weight


def no_loss(like: torch.Tensor) -> torch.Tensor:
    return like.new_zeros(())


def code_counts(indices: torch.Tensor, num_codes: int) -> torch.Tensor:
    """Tokens per code (K,), by sort and binary search: a fixed output shape, no atomics (so
    deterministic) and no host sync, unlike `bincount`, whose CUDA kernel reads the indices'
    min and max back to the host to size its output: a sync in every training step."""
    ordered = indices.detach().reshape(-1).sort().values
    codes = torch.arange(num_codes, device=indices.device, dtype=ordered.dtype)
    return torch.searchsorted(ordered, codes, right=True) - torch.searchsorted(ordered, codes)


def usage_stats(mean: torch.Tensor, counts: torch.Tensor) -> dict[str, torch.Tensor]:
    """Perplexity of the mean code probabilities (K,) and the share of codes some token chose."""
    entropy = -(mean * torch.log(mean.clamp_min(1e-10))).sum()
    return {"perplexity": entropy.exp(), "code_usage": (counts > 0).float().mean()}


def hard_code_stats(indices: torch.Tensor, num_codes: int) -> dict[str, torch.Tensor]:
    """Stats of hard assignments (..., ): their one-hot probabilities, never materialised."""
    counts = code_counts(indices, num_codes)
    return usage_stats(counts.float() / indices.numel(), counts)


def soft_code_stats(probs: torch.Tensor) -> dict[str, torch.Tensor]:
    """Stats of per-token code probabilities (..., K); usage counts each token's likeliest code,
    so soft and hard quantizers report alike."""
    probs = probs.detach().reshape(-1, probs.shape[-1])  # (T, K)
    counts = code_counts(probs.argmax(dim=-1), probs.shape[-1])
    return usage_stats(probs.mean(dim=0), counts)
