"""Model FLOPs per image, counted by torch itself, so every run says how much of its device it
used: achieved TFLOP/s = FLOPs per image x images/s."""

import torch
from torch.utils.flop_counter import FlopCounterMode

from data.config import DataConfig
from data.masking import patch_keep_grid
from models.autoencoder import Autoencoder
from models.config import ModelConfig
from trainers.steps import reconstruction_loss


def train_flops_per_image(model_cfg: ModelConfig, data_cfg: DataConfig, batch: int = 2) -> float:
    """Forward plus backward of one training step, per image, on a throwaway CPU copy of the
    architecture (FLOPs do not depend on the weights); the global RNG is left as it was."""
    grid = data_cfg.resolution // data_cfg.patch_size
    with torch.random.fork_rng(devices=[]):
        model = Autoencoder(model_cfg)
        images = torch.rand(batch, 3, data_cfg.resolution, data_cfg.resolution)
        keep = patch_keep_grid(batch, grid, data_cfg.mask_ratio, torch.Generator().manual_seed(0))
        with FlopCounterMode(display=False) as counter:
            per_image, aux_loss, _ = reconstruction_loss(model, images, keep, data_cfg.patch_size)
            (per_image.mean() + aux_loss).backward()
    return counter.get_total_flops() / batch
