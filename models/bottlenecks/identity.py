"""`identity`: no bottleneck at all, the plain autoencoder as the table's floor."""

import torch
from torch import nn

from models.bottlenecks.base import BottleneckOutput, no_loss
from models.config import ModelConfig


class Identity(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()

    def forward(self, z: torch.Tensor) -> BottleneckOutput:
        return BottleneckOutput(z, no_loss(z), {})
