"""A small decoder-only transformer over bytes whose every FFN is a bottleneck from the registry.

The nanoGPT shape: token embedding, pre-LayerNorm blocks (causal self-attention through
`scaled_dot_product_attention`, then the FFN slot), a final LayerNorm and a linear head over
the 256 byte values. Positions are rotary (no table, so any context length runs). The FFN slot
of block i computes x + B(LayerNorm(x)).z for the bottleneck B named by `model.bottleneck`, as
the autoencoder's bottleneck sees the encoder's tokens: `ffn` is the standard MLP (d -> K -> d,
K = codebook_size), `softvq` the group's untrained normal codebook, and so on. `identity`
removes the slot (attention only): x + LayerNorm(x) would add a copy of the stream, not nothing.
docs/gpt.md says what each quantizer's straight-through output means in the residual stream.
"""

import torch
import torch.nn.functional as F
from torch import nn

from models.bottlenecks import BottleneckOutput, build_bottleneck
from models.config import ModelConfig

VOCAB = 256  # byte-level tokens: no tokenizer, the same on every machine
ATTENTION_ONLY = {"identity"}  # bottlenecks that remove the FFN slot
ROPE_BASE = 10_000.0
INIT_STD = 0.02  # nanoGPT's; the bottlenecks keep their own init (softvq's N(0, 1) codebook)


def rotate(x: torch.Tensor) -> torch.Tensor:
    """Rotary positions on (B, heads, T, head_dim): channel pairs (2i, 2i+1) turned by angle
    t / base^(2i / head_dim) at position t (Su et al. 2021)."""
    _, _, t, dim = x.shape
    inv_freq = ROPE_BASE ** (-torch.arange(0, dim, 2, device=x.device, dtype=torch.float32) / dim)
    angles = torch.outer(torch.arange(t, device=x.device, dtype=torch.float32), inv_freq)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)  # (T, dim/2)
    even, odd = x[..., 0::2], x[..., 1::2]
    turned = torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1)
    return turned.flatten(-2)  # (B, heads, T, dim/2, 2) -> (B, heads, T, dim)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.heads = cfg.heads
        self.qkv = nn.Linear(cfg.embed_dim, 3 * cfg.embed_dim)
        self.proj = nn.Linear(cfg.embed_dim, cfg.embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=-1)
        # (B, T, D) -> (B, heads, T, head_dim)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(rotate(q), rotate(k), v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    """x + attn(LN(x)), then x + B(LN(x)).z with B the bottleneck (none for attention only)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.attn_norm = nn.LayerNorm(cfg.embed_dim)
        self.attn = CausalSelfAttention(cfg)
        self.bottleneck, self.ffn_norm = None, None  # attention only: no slot, no norm for it
        if cfg.bottleneck not in ATTENTION_ONLY:
            self.ffn_norm = nn.LayerNorm(cfg.embed_dim)
            self.bottleneck = build_bottleneck(cfg)

    def forward(self, x: torch.Tensor) -> BottleneckOutput:
        x = x + self.attn(self.attn_norm(x))
        if self.bottleneck is None:
            return BottleneckOutput(x, x.new_zeros(()), {})
        z, aux_loss, stats = self.bottleneck(self.ffn_norm(x))
        return BottleneckOutput(x + z, aux_loss, stats)


class GPT(nn.Module):
    """Byte tokens (B, T) -> next-byte logits (B, T, 256), the blocks' summed aux loss and
    their stats averaged over blocks."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, cfg.embed_dim)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(cfg.embed_dim)
        self.head = nn.Linear(cfg.embed_dim, VOCAB, bias=False)
        for name, module in self.named_modules():
            if ".bottleneck" not in name and isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, std=INIT_STD)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, tokens: torch.Tensor) -> BottleneckOutput:
        x = self.embed(tokens)  # (B, T) -> (B, T, D)
        aux_loss, stats = x.new_zeros(()), {}
        for block in self.blocks:
            x, block_aux, block_stats = block(x)
            aux_loss = aux_loss + block_aux
            for key, value in block_stats.items():
                stats[key] = stats.get(key, 0.0) + value / len(self.blocks)
        return BottleneckOutput(self.head(self.norm(x)), aux_loss, stats)


def next_token_loss(model: GPT, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Mean cross-entropy in nats per predicted token (B,) of windows (B, T+1) of byte ids:
    positions 0..T-1 predict 1..T."""
    logits, aux_loss, stats = model(windows[:, :-1])
    per_token = F.cross_entropy(
        logits.float().transpose(1, 2), windows[:, 1:], reduction="none"
    )  # (B, 256, T) against (B, T) -> (B, T)
    return per_token.mean(dim=1), aux_loss, stats
