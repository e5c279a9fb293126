"""What a batch of stored examples becomes as a loss, by the data's kind: masked reconstruction
of images (the group's task) or next-byte prediction of text windows. Training steps,
evaluation, FLOP counts and calibration all go through here, so a model family brings no loop
of its own.

Each objective's `keep` is a per-example tensor drawn with the batch: the patch masks of an
image (N, 1, g, g), and nothing (N, 0) for text, whose fixed evaluation windows need no mask.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from data.config import DataConfig
from data.masking import apply_mask, fixed_eval_grid, patch_keep_grid
from data.registry import kind
from models.gpt import VOCAB, next_token_loss
from trainers.fastpath import FastPath
from trainers.previews import reconstructions_png
from trainers.samples import samples_text
from trainers.transfer import to_device, to_unit

Loss = tuple[torch.Tensor, torch.Tensor, dict]  # per example (B,), aux loss, bottleneck stats


def reconstruction_loss(
    model: nn.Module, images: torch.Tensor, keep: torch.Tensor, patch: int
) -> Loss:
    """Per-image MSE (B,) of the reconstruction of masked images against the unmasked ones."""
    recon, aux_loss, stats = model(apply_mask(images, keep, patch))
    per_image = F.mse_loss(recon.float(), images, reduction="none").mean(dim=(1, 2, 3))
    return per_image, aux_loss, stats


def image_loss(model, batch, keep, cfg: DataConfig, device, fast: FastPath) -> Loss:
    images = fast.images(to_unit(batch, device))
    return reconstruction_loss(model, images, to_device(keep, device), cfg.patch_size)


def text_loss(model, batch, keep, cfg: DataConfig, device, fast: FastPath) -> Loss:
    return next_token_loss(model, to_device(batch, device).long())


def image_keep(n: int, cfg: DataConfig, generator: torch.Generator) -> torch.Tensor:
    """Training masks (n, 1, g, g) for n images, drawn on the host: the same on every device."""
    return patch_keep_grid(n, cfg.resolution // cfg.patch_size, cfg.mask_ratio, generator)


def no_keep(n: int, cfg: DataConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    return torch.zeros(n, 0, dtype=torch.bool)


def image_fixed_keep(n: int, cfg: DataConfig) -> torch.Tensor:
    """The same masks for image i of a split in every trial, whatever the model or batch."""
    return fixed_eval_grid(n, cfg.resolution // cfg.patch_size, cfg.mask_ratio, cfg.eval_mask_seed)


def random_images(n: int, cfg: DataConfig, generator: torch.Generator) -> torch.Tensor:
    shape = (n, 3, cfg.resolution, cfg.resolution)
    return torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)


def random_windows(n: int, cfg: DataConfig, generator: torch.Generator) -> torch.Tensor:
    shape = (n, cfg.context + 1)
    return torch.randint(0, VOCAB, shape, generator=generator, dtype=torch.uint8)


@dataclass(frozen=True)
class Objective:
    name: str  # what the loss measures, for methods and docs
    loss: Callable[..., Loss]  # (model, uint8 batch, keep, data cfg, device, fast)
    draw_keep: Callable[[int, DataConfig, torch.Generator], torch.Tensor]  # training masks
    fixed_keep: Callable[[int, DataConfig], torch.Tensor]  # evaluation masks, fixed per example
    synthetic: Callable[[int, DataConfig, torch.Generator], torch.Tensor]  # FLOPs, calibration
    preview: Callable[..., tuple[str, bytes]]  # (model, examples, keep, cfg, device, fast)


OBJECTIVES = {
    "image": Objective(
        "masked reconstruction MSE per pixel", image_loss, image_keep, image_fixed_keep,
        random_images, reconstructions_png,
    ),
    "text": Objective(
        "next-byte cross-entropy, nats per token", text_loss, no_keep, no_keep, random_windows,
        samples_text,
    ),
}  # fmt: skip


def objective(cfg: DataConfig) -> Objective:
    return OBJECTIVES[kind(cfg.dataset)]
