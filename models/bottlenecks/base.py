"""The one interface every bottleneck keeps, so the autoencoder never knows which it holds."""

from typing import NamedTuple

import torch


class BottleneckOutput(NamedTuple):
    """Tokens for the decoder, a loss to add (0 where none) and detached stats for logging."""

    z: torch.Tensor  # (B, N, D), same shape as the input tokens
    aux_loss: torch.Tensor  # scalar
    stats: dict[str, torch.Tensor]  # scalars, detached


def no_loss(like: torch.Tensor) -> torch.Tensor:
    return like.new_zeros(())


def code_usage_stats(probs: torch.Tensor) -> dict[str, torch.Tensor]:
    """Perplexity and share of codes used, from per-token code probabilities (..., K).

    Hard assignments are one-hot probabilities, so soft and hard quantizers report alike.
    """
    probs = probs.detach().reshape(-1, probs.shape[-1])  # (T, K)
    mean = probs.mean(dim=0)  # (K,)
    entropy = -(mean * torch.log(mean.clamp_min(1e-10))).sum()
    used = (probs.argmax(dim=-1).bincount(minlength=probs.shape[-1]) > 0).float().mean()
    return {"perplexity": entropy.exp(), "code_usage": used}


def one_hot_probs(indices: torch.Tensor, num_codes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(indices, num_codes).float()
