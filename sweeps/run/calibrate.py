"""The training rate of a planned trial where no earlier trial measured it: a few real training
steps of its model at its batch on this machine's device of its kind (seconds, not minutes), or,
where this machine has no such device, its FLOPs per image against a nominal device."""

import functools
import time

import torch

from sweeps.define.cost import Rate
from trainers import fastpath
from trainers.config import ExperimentConfig
from trainers.flops import train_flops_per_image
from trainers.objectives import objective
from trainers.steps import draw_keep, train_step

# A trial's fixed cost (Ray Train's worker group, imports, data, model, first report): `make
# bench` measured 17.6 s for the default trial here (docs/benchmarks.md, "fixed cost share");
# earlier trials in the store replace it with their own `startup_s`.
STARTUP_S = 17.6
STEPS_S = 0.6  # timed steps stop once they took this long (after one untimed warm-up step)
MOST_STEPS = 10
# Without the trial's device here: FLOPs against a nominal GPU (a mid-range data-centre part in
# bf16) at a utilisation typical of small convolutional models. Marked as such where printed.
NOMINAL_GPU_TFLOPS = 100.0
NOMINAL_UTILISATION = 0.3


def device_for(config: ExperimentConfig) -> torch.device | None:
    """This machine's device of the trial's kind, or None where it has none."""
    if not config.resources.use_gpu:
        return torch.device("cpu")
    return torch.device("cuda") if torch.cuda.is_available() else None


@functools.cache
def measured_rate(config: ExperimentConfig, device: torch.device) -> float:
    """Images/s of the trial (every worker) from timed steps of one worker's batch; once per
    config in a process."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(config.resources.threads)
    try:
        from models.registry import build_model

        model = build_model(config.model).to(device)
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=config.train.lr)
        train = config.train  # compile is left out: it would take longer than the estimate saves
        fast = fastpath.resolve(train.precision, train.channels_last, "off", device)
        batch, generator = config.train.batch_size, torch.Generator().manual_seed(0)
        images = objective(config.data).synthetic(batch, config.data, generator)
        keep = draw_keep(batch, config.data, torch.Generator().manual_seed(0))
        model.train()
        train_step(model, optimizer, images, keep, config.data, device, fast)  # warm-up
        steps, started = 0, time.perf_counter()
        while steps < MOST_STEPS and (steps < 2 or time.perf_counter() - started < STEPS_S):
            loss = train_step(model, optimizer, images, keep, config.data, device, fast)
            steps += 1
        loss.item()  # the device has finished the steps
        elapsed = time.perf_counter() - started
    finally:
        torch.set_num_threads(threads)
    return steps * batch * config.resources.workers / elapsed


def calibrated_rate(config: ExperimentConfig, startup_s: float = STARTUP_S) -> Rate:
    device = device_for(config)
    if device is not None:
        detail = f"{MOST_STEPS} steps at most on {device.type}, batch {config.train.batch_size}"
        return Rate(measured_rate(config, device), startup_s, "calibration", detail)
    flops = train_flops_per_image(config.model, config.data)
    gpus = config.resources.workers * config.resources.gpus_per_worker
    per_s = NOMINAL_GPU_TFLOPS * 1e12 * NOMINAL_UTILISATION * gpus / flops
    detail = (
        f"{flops / 1e9:.2f} GFLOPs an image against a nominal {NOMINAL_GPU_TFLOPS:g} TFLOP/s GPU "
        f"at {NOMINAL_UTILISATION:.0%}: no GPU here to calibrate on"
    )
    return Rate(per_s, startup_s, "FLOPs", detail)
