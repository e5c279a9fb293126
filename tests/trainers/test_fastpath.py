"""The fast path's switches on CPU (no GPU here): what "auto" resolves to on each device, that
bf16 autocast and channels_last really change the step, and FLOPs counted by torch."""

import pytest
import torch

from data.config import DataConfig
from models.autoencoder import Autoencoder
from models.config import ModelConfig
from tests.conftest import tiny_model
from trainers.config import ConfigError, ExperimentConfig
from trainers.fastpath import PLAIN, FastPath, convert, resolve
from trainers.flops import train_flops_per_image
from trainers.steps import (
    draw_keep,
    evaluate,
    resident,
    seed_everything,
    to_device,
    train_step,
)

CPU = torch.device("cpu")
SMALL = tiny_model(bottleneck="vq")
DATA = DataConfig(resolution=16)


def test_auto_means_fast_on_cuda_and_plain_on_cpu():
    assert resolve("auto", "auto", "auto", CPU) == PLAIN
    assert resolve("auto", "auto", "auto", torch.device("cuda")) == FastPath(
        torch.bfloat16, channels_last=True, compile=True
    )
    assert resolve("bf16", "on", "off", CPU) == FastPath(torch.bfloat16, True, False)
    assert resolve("fp32", "off", "off", torch.device("cuda")) == PLAIN


def step_loss(fast: FastPath) -> float:
    seed_everything(0)
    model = convert(Autoencoder(SMALL), fast)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = (torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 255).byte()
    generator = torch.Generator().manual_seed(2)
    return train_step(
        model, optimizer, batch, draw_keep(8, DATA, generator), DATA, CPU, fast
    ).item()


def test_bf16_autocast_changes_the_step_and_stays_close():
    plain, bf16 = step_loss(PLAIN), step_loss(FastPath(torch.bfloat16))
    assert plain != bf16  # autocast really ran the matmuls in bf16
    assert bf16 == pytest.approx(plain, rel=0.05)


def test_channels_last_converts_the_model_and_keeps_the_loss():
    fast = FastPath(channels_last=True)
    seed_everything(0)
    model = convert(Autoencoder(SMALL), fast)
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert step_loss(fast) == pytest.approx(step_loss(PLAIN), rel=1e-4)


def test_evaluation_under_autocast_repeats_exactly():
    fast = FastPath(torch.bfloat16, channels_last=True)
    seed_everything(0)
    model = convert(Autoencoder(SMALL), fast)
    images = (torch.rand(10, 3, 16, 16, generator=torch.Generator().manual_seed(3)) * 255).byte()
    keep = torch.rand(10, 1, 8, 8, generator=torch.Generator().manual_seed(4)) > 0.5
    first, _ = evaluate(model, images, keep, DATA, 4, CPU, fast)
    second, _ = evaluate(model, images, keep, DATA, 4, CPU, fast)
    assert first.loss == second.loss


def test_flops_scale_with_pixels_and_leave_the_global_rng_alone():
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    small = train_flops_per_image(ModelConfig(), DataConfig(resolution=32))
    assert torch.rand(1) == expected
    assert train_flops_per_image(ModelConfig(), DataConfig(resolution=64)) == 4 * small
    plain = train_flops_per_image(ModelConfig(bottleneck="identity"), DataConfig(resolution=32))
    assert plain < small  # the vq bottleneck's distance matmuls are counted


def test_bad_switches_name_the_valid_ones():
    with pytest.raises(ConfigError, match="train.precision must be one of auto, bf16, fp32"):
        ExperimentConfig().with_overrides({"train.precision": "fp16"})
    with pytest.raises(ConfigError, match="train.compile must be one of auto, on, off"):
        ExperimentConfig().with_overrides({"train.compile": "yes"})


def three_step_losses(fast: FastPath, device: torch.device = CPU) -> list[float]:
    seed_everything(0)
    model = convert(Autoencoder(SMALL).to(device), fast)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(2)
    losses = []
    for i in range(3):
        batch = (torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(i)) * 255).byte()
        keep = draw_keep(8, DATA, generator)
        losses.append(train_step(model, optimizer, batch, keep, DATA, device, fast))
    return [loss.item() for loss in losses]


def test_compiled_training_steps_follow_the_eager_ones():
    """torch.compile with inductor, for real (C++ kernels on CPU, about 30 s here): forward,
    backward and three updates land where eager mode does."""
    torch._dynamo.reset()
    compiled = three_step_losses(FastPath(compile=True))
    assert compiled == pytest.approx(three_step_losses(PLAIN), rel=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_fast_training_step_never_makes_the_host_wait():
    """Masks and batch indices reach the GPU through pinned, non-blocking copies and the
    codebook stats need no read-back, so the host runs ahead of the GPU step after step."""
    cuda = torch.device("cuda")
    fast = resolve("auto", "auto", "auto", cuda)
    seed_everything(0)
    model = convert(Autoencoder(SMALL).to(cuda), fast)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    images = resident((torch.rand(64, 3, 16, 16) * 255).byte(), cuda)
    generator = torch.Generator().manual_seed(2)

    def step():
        order = to_device(torch.randperm(len(images), generator=generator)[:8], cuda)
        keep = draw_keep(8, DATA, generator)
        return train_step(model, optimizer, images[order], keep, DATA, cuda, fast)

    for _ in range(3):  # compile, autotune, optimizer state: all before the check
        step()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        losses = [step() for _ in range(3)]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(torch.stack(losses)).all()
