"""The group's convolutional autoencoder with a swappable token bottleneck (4x downsampling)."""

import torch
from torch import nn

from models.bottlenecks import BottleneckOutput, build_bottleneck
from models.config import ModelConfig


class ResidualBlock(nn.Module):
    """x + Conv1x1(ReLU(Conv3x3(ReLU(x)))), as in the VQ-VAE paper."""

    def __init__(self, channels: int, inner: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, inner, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(inner, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


def residual_stack(cfg: ModelConfig) -> list[nn.Module]:
    blocks = [ResidualBlock(cfg.hidden_channels, cfg.res_channels) for _ in range(cfg.res_blocks)]
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


def parameter_counts(model: Autoencoder) -> dict[str, int]:
    """Total, trainable and frozen parameters, and the bottleneck's share of the total."""
    params = list(model.parameters())
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    return {
        "params_total": total,
        "params_trainable": trainable,
        "params_frozen": total - trainable,
        "params_bottleneck": sum(p.numel() for p in model.bottleneck.parameters()),
    }
