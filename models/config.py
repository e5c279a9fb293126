"""The model's settings: the group's VQ-VAE by default, every width a config value."""

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    bottleneck: str = "vq"  # a name in models.bottlenecks.BOTTLENECKS
    in_channels: int = 3  # RGB
    stem_channels: int = 64  # first conv's width
    hidden_channels: int = 128  # encoder/decoder trunk width
    res_blocks: int = 2  # residual blocks in the encoder and again in the decoder
    res_channels: int = 32  # residual block's inner width
    embed_dim: int = 64  # token width d inside the bottleneck
    codebook_size: int = 512  # K codebook entries for the VQ family
    ffn_mult: int = 8  # FFN hidden width = ffn_mult * embed_dim (512 for d=64)
    dropout: float = 0.2  # llmffn's output dropout
    commitment: float = 0.25  # vq's commitment-loss weight (beta)

    def __post_init__(self):
        positive = (
            "in_channels",
            "stem_channels",
            "hidden_channels",
            "res_channels",
            "embed_dim",
            "codebook_size",
            "ffn_mult",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        if self.res_blocks < 0:
            raise ValueError(f"model.res_blocks must be >= 0, got {self.res_blocks}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"model.dropout must be in [0, 1), got {self.dropout}")
        if self.commitment < 0:
            raise ValueError(f"model.commitment must be >= 0, got {self.commitment}")
