"""The models as others load them, without aux loss or stats, so
`mlflow.pytorch.load_model("models:/ovat-<ablation>/latest")` is one call in a notebook:
images in and reconstructions out for the autoencoder, byte ids in and next-byte logits out
for the GPT."""

import torch
from torch import nn


class Reconstructor(nn.Module):
    """Float images (B, 3, H, W) in [0, 1] -> their reconstruction; eval mode."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model.eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images).z


class NextBytes(nn.Module):
    """Byte ids (B, T), int64 -> next-byte logits (B, T, 256); eval mode."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model.eval()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model(tokens).z


EXPORTS = {"autoencoder": Reconstructor, "gpt": NextBytes}  # model.family -> wrapper
