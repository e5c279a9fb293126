"""The model's settings: the group's VQ-VAE by default, every width a config value."""

from dataclasses import dataclass

# How a residual block adds its skip: "group" computes relu(x) + F(relu(x)), what the group's
# block does (its in-place ReLU rewrites the input before `out += input`); "preact" is the
# textbook x + F(relu(x)) of the VQ-VAE paper. F = Conv1x1(ReLU(Conv3x3(.))) in both.
RESIDUALS = ("group", "preact")
# What the bottleneck sits in: the group's image autoencoder, or a decoder-only language model
# whose every block has the bottleneck in its FFN slot (models/gpt.py, docs/gpt.md).
FAMILIES = ("autoencoder", "gpt")


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """The model and its bottleneck; the defaults are the group's autoencoder."""

    bottleneck: str = "vq"  # softvq, amvq, smvq, vq, ffn, llmffn, identity (docs/group.md)
    family: str = "autoencoder"  # autoencoder (images) or gpt (text, byte tokens; docs/gpt.md)
    in_channels: int = 3  # RGB
    stem_channels: int = 64  # first conv's width
    hidden_channels: int = 128  # encoder/decoder trunk width
    res_blocks: int = 2  # residual blocks in the encoder and again in the decoder
    res_channels: int = 32  # residual block's inner width
    embed_dim: int = 64  # token width d inside the bottleneck
    codebook_size: int = 512  # K codebook entries for the VQ family; also the FFN's hidden width
    residual: str = "group"  # residual block: group (their function) or preact (textbook)
    dropout: float = 0.2  # llmffn's output dropout
    commitment: float = 0.25  # vq's commitment-loss weight (beta)
    layers: int = 4  # gpt: transformer blocks, each with the bottleneck in its FFN slot
    heads: int = 4  # gpt: attention heads; embed_dim (d_model) must divide by it

    def __post_init__(self):
        positive = (
            "in_channels",
            "stem_channels",
            "hidden_channels",
            "res_channels",
            "embed_dim",
            "codebook_size",
            "layers",
            "heads",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        if self.res_blocks < 0:
            raise ValueError(f"model.res_blocks must be >= 0, got {self.res_blocks}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"model.dropout must be in [0, 1), got {self.dropout}")
        if self.residual not in RESIDUALS:
            raise ValueError(
                f"model.residual must be one of {', '.join(RESIDUALS)}, got {self.residual!r}"
            )
        if self.family not in FAMILIES:
            raise ValueError(
                f"model.family must be one of {', '.join(FAMILIES)}, got {self.family!r}"
            )
        if self.family == "gpt" and (self.embed_dim % self.heads or self.head_dim % 2):
            raise ValueError(
                f"model.embed_dim {self.embed_dim} must split into model.heads {self.heads} "
                "heads of an even width (rotary positions turn pairs of channels)"
            )
        if self.commitment < 0:
            raise ValueError(f"model.commitment must be >= 0, got {self.commitment}")

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.heads
