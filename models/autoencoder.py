"""The group's convolutional autoencoder with a swappable token bottleneck (4x downsampling)."""

import torch
from torch import nn

from models.bottlenecks import BottleneckOutput, build_bottleneck
from models.config import ModelConfig


class ResidualBlock(nn.Module):
    """skip + F(relu(x)), F = Conv1x1(ReLU(Conv3x3(.))); the skip is relu(x) in the group's
    block ("group": their in-place ReLU rewrote the input before `out += input`) and x in the
    VQ-VAE paper's ("preact"). Parameter names and order are the group's (`net.1`, `net.3`)."""

    def __init__(self, channels: int, inner: int, residual: str):
        super().__init__()
        self.residual = residual
        self.net = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, inner, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(inner, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return SKIPS[self.residual](x) + self.net(x)

    def extra_repr(self) -> str:
        return f"residual={self.residual}"  # in the architecture fingerprint


SKIPS = {"group": torch.relu, "preact": lambda x: x}  # model.residual -> the skip path


def residual_stack(cfg: ModelConfig) -> list[nn.Module]:
    blocks = [
        ResidualBlock(cfg.hidden_channels, cfg.res_channels, cfg.residual)
        for _ in range(cfg.res_blocks)
    ]
    return [*blocks, nn.ReLU()]


def encoder(cfg: ModelConfig) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cfg.in_channels, cfg.stem_channels, 4, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(cfg.stem_channels, cfg.hidden_channels, 4, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(cfg.hidden_channels, cfg.hidden_channels, 3, padding=1),
        *residual_stack(cfg),
    )


def decoder(cfg: ModelConfig) -> nn.Sequential:
    return nn.Sequential(
        *residual_stack(cfg),
        nn.ConvTranspose2d(cfg.hidden_channels, cfg.hidden_channels, 3, padding=1),
        nn.ReLU(),
        nn.ConvTranspose2d(cfg.hidden_channels, cfg.stem_channels, 4, stride=2, padding=1),
        nn.ReLU(),
        nn.ConvTranspose2d(cfg.stem_channels, cfg.in_channels, 4, stride=2, padding=1),
    )


class Autoencoder(nn.Module):
    """Encoder -> 1x1 conv to tokens -> bottleneck -> 1x1 conv back -> decoder; no output act."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.encoder = encoder(cfg)
        self.pre_bottleneck = nn.Conv2d(cfg.hidden_channels, cfg.embed_dim, 1)
        self.bottleneck = build_bottleneck(cfg)
        self.post_bottleneck = nn.Conv2d(cfg.embed_dim, cfg.hidden_channels, 1)
        self.decoder = decoder(cfg)

    def forward(self, x: torch.Tensor) -> BottleneckOutput:
        """Reconstruction of x (B, 3, H, W), the bottleneck's aux loss and its stats."""
        latent = self.pre_bottleneck(self.encoder(x))  # (B, D, H/4, W/4)
        b, d, h, w = latent.shape
        tokens = latent.flatten(2).transpose(1, 2)  # (B, D, H, W) -> (B, H*W, D)
        z, aux_loss, stats = self.bottleneck(tokens)
        latent = z.transpose(1, 2).reshape(b, d, h, w)  # (B, H*W, D) -> (B, D, H, W)
        return BottleneckOutput(self.decoder(self.post_bottleneck(latent)), aux_loss, stats)
