"""The few collectives a data-parallel trial needs; each is the identity on one worker."""

import torch
import torch.distributed as dist

from trainers.steps import Sums


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def all_reduce(sums: Sums, device: torch.device) -> Sums:
    """Loss sums over every rank's images: the mean of a split, not a mean of rank means."""
    if not is_distributed():
        return sums
    packed = torch.tensor([sums.loss, float(sums.count)], dtype=torch.float64, device=device)
    dist.all_reduce(packed)
    return Sums(packed[0].item(), int(packed[1].item()))


def all_reduce_batch_means(means: dict[str, float], batches: int, device) -> dict[str, float]:
    """Per-batch means (a split's bottleneck statistics) over every rank's batches: each rank's
    means weighted by its batch count, as one process evaluating the whole split would."""
    if not is_distributed() or not means:
        return means
    names = sorted(means)
    packed = torch.tensor(
        [means[n] * batches for n in names] + [float(batches)], dtype=torch.float64, device=device
    )
    dist.all_reduce(packed)
    total = max(packed[-1].item(), 1.0)
    return {n: packed[i].item() / total for i, n in enumerate(names)}


def all_reduce_means(means: list[float], device: torch.device) -> list[float]:
    """Per-step means over all ranks (equal batches on every rank): one collective per epoch."""
    if not is_distributed() or not means:
        return means
    packed = torch.tensor(means, dtype=torch.float64, device=device)
    dist.all_reduce(packed)
    return (packed / dist.get_world_size()).tolist()


def agree_min(step: int, device: torch.device) -> int:
    """The smallest value over all ranks: every rank then stops at the same divergence check."""
    if not is_distributed():
        return step
    packed = torch.tensor([step], dtype=torch.int64, device=device)
    dist.all_reduce(packed, op=dist.ReduceOp.MIN)
    return int(packed.item())
