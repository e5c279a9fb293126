"""The models as others load them, without aux loss or stats, so
`mlflow.pytorch.load_model("models:/ovat-<ablation>/latest")` is one call in a notebook:
images in and reconstructions out for the autoencoder, byte ids in and next-byte logits out
for the GPT."""

import torch
from torch import nn


class OutputOnly(nn.Module):
    """The wrapped model's output alone (its `.z`), in eval mode."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model.eval()

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model(inputs).z


class Reconstructor(OutputOnly):
    """Float images (B, 3, H, W) in [0, 1] -> their reconstruction."""


class NextBytes(OutputOnly):
    """Byte ids (B, T), int64 -> next-byte logits (B, T, 256)."""


EXPORTS = {"autoencoder": Reconstructor, "gpt": NextBytes}  # model.family -> wrapper
