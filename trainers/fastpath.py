"""The GPU fast path: bf16 autocast, channels_last and torch.compile, each a config switch whose
"auto" means on for CUDA and off for CPU (CPU trials stay bit-reproducible and quick to start).

Training steps run the compiled model; evaluation runs the plain model under the same autocast,
so a follow-up `make eval` of a checkpoint reproduces the trial's logged loss exactly.
"""

import contextlib
from dataclasses import dataclass

import torch

SWITCHES = ("auto", "on", "off")
PRECISIONS = ("auto", "bf16", "fp32")
MATMUL_PRECISIONS = ("highest", "high", "medium")  # torch.set_float32_matmul_precision


@dataclass(frozen=True)
class FastPath:
    autocast: torch.dtype | None = None  # None: fp32
    channels_last: bool = False
    compile: bool = False

    def autocast_context(self, device: torch.device):
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=self.autocast)

    def images(self, batch: torch.Tensor) -> torch.Tensor:
        """Float images in the layout the model was converted to."""
        if self.channels_last:
            return batch.contiguous(memory_format=torch.channels_last)
        return batch


PLAIN = FastPath()  # fp32, default layout, eager: CPU, and every default argument


def switch(value: str, on_gpu: bool) -> bool:
    return value == "on" or (value == "auto" and on_gpu)


def resolve(precision: str, channels_last: str, compile_: str, device: torch.device) -> FastPath:
    on_gpu = device.type == "cuda"
    bf16 = precision == "bf16" or (precision == "auto" and on_gpu)
    return FastPath(
        autocast=torch.bfloat16 if bf16 else None,
        channels_last=switch(channels_last, on_gpu),
        compile=switch(compile_, on_gpu),
    )


def convert(model: torch.nn.Module, fast: FastPath) -> torch.nn.Module:
    """Converts the model in place (channels_last) and returns what training should call."""
    if fast.channels_last:
        model.to(memory_format=torch.channels_last)
    return torch.compile(model) if fast.compile else model
