"""The autoencoder as others load it: images in, reconstructions out (no aux loss, no stats),
so `mlflow.pytorch.load_model("models:/ovat-<ablation>/latest")` is one call in a notebook."""

import torch
from torch import nn

from models.autoencoder import Autoencoder


class Reconstructor(nn.Module):
    """Float images (B, 3, H, W) in [0, 1] -> their reconstruction; eval mode."""

    def __init__(self, model: Autoencoder):
        super().__init__()
        self.model = model.eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images).z
