"""Patch masking of the encoder input, as in the group's runs.

Masks live on the patch grid (N, 1, H/p, W/p) and are expanded per batch, so fixed eval masks
for a whole split cost a few bytes per image.
"""

import torch


def patch_keep_grid(
    n: int, grid: int, ratio: float, generator: torch.Generator, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Bool (n, 1, grid, grid): True where a patch is kept; each dropped with probability ratio."""
    noise = torch.rand(n, 1, grid, grid, generator=generator, device=device)
    return noise >= ratio


def expand_grid(keep: torch.Tensor, patch: int) -> torch.Tensor:
    """(N, 1, g, g) -> (N, 1, g*patch, g*patch), each cell covering one patch."""
    return keep.repeat_interleave(patch, dim=2).repeat_interleave(patch, dim=3)


def apply_mask(images: torch.Tensor, keep: torch.Tensor, patch: int) -> torch.Tensor:
    """Zero the dropped patches of images (N, C, H, W) given the patch grid keep (N, 1, g, g)."""
    return images * expand_grid(keep, patch).to(images.dtype)


def fixed_eval_grid(n: int, grid: int, ratio: float, seed: int) -> torch.Tensor:
    """The same masks for image i of a split in every trial, whatever the model or batch size."""
    generator = torch.Generator().manual_seed(seed)
    return patch_keep_grid(n, grid, ratio, generator)
