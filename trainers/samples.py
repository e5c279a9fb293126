"""What a test loss looks like for text: the same first test windows for every trial, each
split in half, the model's greedy continuation of the first half beside the true second half."""

import torch

from data.config import DataConfig
from trainers.fastpath import PLAIN, FastPath

SAMPLES_FILE = "samples.txt"  # a language-model trial's preview, in its checkpoint folder


def shown(data: bytes) -> str:
    """Bytes as readable text: invalid UTF-8 replaced, control characters escaped."""
    text = data.decode("utf-8", errors="replace")
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


@torch.no_grad()
def continuations(
    model: torch.nn.Module, windows: torch.Tensor, device: torch.device, fast: FastPath = PLAIN
) -> list[bytes]:
    """Greedy next bytes for the second half of each window (N, T + 1), from its first half."""
    model.eval()
    half = windows.shape[1] // 2
    tokens = windows[:, :half].long().to(device)
    for _ in range(windows.shape[1] - half):
        with fast.autocast_context(device):
            logits = model(tokens).z[:, -1]  # (N, 256): the next byte's scores
        tokens = torch.cat([tokens, logits.argmax(dim=-1, keepdim=True)], dim=1)
    return [bytes(row) for row in tokens[:, half:].byte().cpu().tolist()]


def samples_text(
    model: torch.nn.Module,
    windows: torch.Tensor,
    keep: torch.Tensor,
    cfg: DataConfig,
    device: torch.device,
    fast: FastPath = PLAIN,
) -> tuple[str, bytes]:
    """(SAMPLES_FILE, its UTF-8 text) for uint8 windows (N, T + 1); `keep` is unused (text has
    no masks) and kept for the preview interface."""
    half = windows.shape[1] // 2
    lines = []
    for i, (window, guess) in enumerate(zip(windows, continuations(model, windows, device, fast),
                                            strict=True)):  # fmt: skip
        row = bytes(window.tolist())
        lines += [
            f"## test window {i}",
            f"prompt:  {shown(row[:half])}",
            f"truth:   {shown(row[half:])}",
            f"model:   {shown(guess)}",
            "",
        ]
    return SAMPLES_FILE, "\n".join(lines).encode()
