"""Model FLOPs per example (an image or a text window), counted by torch itself, so every run
says how much of its device it used: achieved TFLOP/s = FLOPs per example x examples/s."""

import torch
from torch.utils.flop_counter import FlopCounterMode

from data.config import DataConfig
from models.config import ModelConfig
from models.registry import build_model
from trainers.fastpath import PLAIN
from trainers.objectives import objective


def train_flops_per_image(model_cfg: ModelConfig, data_cfg: DataConfig, batch: int = 2) -> float:
    """Forward plus backward of one training step, per example, on a throwaway CPU copy of the
    architecture (FLOPs do not depend on the weights); the global RNG is left as it was."""
    task, cpu, generator = objective(data_cfg), torch.device("cpu"), torch.Generator()
    with torch.random.fork_rng(devices=[]):
        model = build_model(model_cfg)
        examples = task.synthetic(batch, data_cfg, generator.manual_seed(0))
        keep = task.draw_keep(batch, data_cfg, generator.manual_seed(0))
        with FlopCounterMode(display=False) as counter:
            per_example, aux_loss, _ = task.loss(model, examples, keep, data_cfg, cpu, PLAIN)
            (per_example.mean() + aux_loss).backward()
    return counter.get_total_flops() / batch
