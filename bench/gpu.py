"""`make bench-gpu`: the GPU fast path's figures in one prepared run of a few minutes.

1. The reference model at 128 px, batch 256: fp32 eager against bf16 + channels_last +
   torch.compile, in images/s and achieved TFLOP/s (FLOPs counted by torch) against the
   device's bf16 dense peak (`--peak-tflops`, 989 for an H100/H200 SXM).
2. 64 px from uint8 data resident on the GPU: the share of step time spent waiting for the batch.
3. Host syncs in warm training steps (torch's sync debug mode), fp32 eager and the fast path:
   0 means the host never waits for the GPU within a step.
4. 1, 2 and 4 trials packed on one GPU (separate processes, as fractional-GPU trials are):
   total images/s.
5. 64 px streamed (`data.stream=on`): 20,000 images written as prepared Parquet shards, read by
   Ray Data as a Train worker reads them, each batch a real training step: the share of
   training time spent waiting for batches (target <= 5%).

The same code runs on CPU at a tiny size (`--smoke`), which is how the tests keep it working;
its figures there mean nothing.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from data.config import DataConfig
from models.autoencoder import Autoencoder
from models.config import ModelConfig
from trainers.fastpath import PLAIN, FastPath, convert, resolve
from trainers.flops import train_flops_per_image
from trainers.steps import draw_keep, resident, to_device, train_step


def synthetic_images(n: int, resolution: int, device: torch.device) -> torch.Tensor:
    """uint8 images, resident on the device: what a prepared split looks like there."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, resolution, resolution), generator=generator)
    return resident(images.to(torch.uint8), device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def trainer(fast: FastPath, resolution: int, batch: int, device: torch.device):
    """A real training step of the reference model on resident uint8 data, as a closure that
    returns (the step's loss on device, seconds spent gathering its batch)."""
    data = DataConfig(resolution=resolution)
    model = convert(Autoencoder(ModelConfig()).to(device), fast)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
    images = synthetic_images(batch * 4, resolution, device)
    generator = torch.Generator().manual_seed(0)

    def step() -> tuple[torch.Tensor, float]:
        order = to_device(torch.randperm(len(images), generator=generator)[:batch], images.device)
        gather = time.perf_counter()
        batch_images = images[order]
        waited = time.perf_counter() - gather
        keep = draw_keep(len(batch_images), data, generator)
        return train_step(model, optimizer, batch_images, keep, data, device, fast), waited

    return step


def measure(fast: FastPath, resolution: int, batch: int, seconds: float, device) -> dict:
    """Steady-state images/s of real training steps (after a warm-up that includes compiling)
    and the share of each step spent gathering its batch; losses read back once at the end."""
    step = trainer(fast, resolution, batch, device)
    for _ in range(3):  # warm-up: compilation, autotuning, allocator
        step()
    sync(device)
    losses, waited, steps = [], 0.0, 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        loss, wait = step()
        losses.append(loss)
        waited += wait
        steps += 1
    sync(device)
    elapsed = time.perf_counter() - started
    assert torch.isfinite(torch.stack(losses)).all()
    rate = steps * batch / elapsed
    flops = train_flops_per_image(ModelConfig(), DataConfig(resolution=resolution))
    return {
        "images_per_s": rate,
        "tflops": flops * rate / 1e12,
        "wait_share": waited / elapsed,
        "steps": steps,
    }


def streamed_wait(fast: FastPath, resolution: int, batch: int, images: int, device) -> dict:
    """Training steps on batches streamed by Ray Data from freshly written shards (the first
    epoch's start-up and 3 warm-up steps left out): the share of that time spent waiting for
    the next batch, and the images/s."""
    import ray

    from data.row_groups import file_parts
    from data.shards import SplitArrays, write_split
    from trainers.streaming import epoch_batches, rank_epoch

    if not ray.is_initialized():
        ray.init(include_dashboard=False, configure_logging=False, log_to_driver=False)
    data = DataConfig(resolution=resolution)
    model = convert(Autoencoder(ModelConfig()).to(device), fast)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
    generator = torch.Generator().manual_seed(0)
    pixels = np.random.default_rng(0).integers(0, 256, (images, resolution, resolution, 3))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        arrays = SplitArrays(pixels.astype(np.uint8), np.zeros(images), [""] * images)
        write_split(folder, "train", arrays)
        del pixels, arrays
        paths = sorted(str(path) for path in folder.glob("train-*.parquet"))  # no manifest
        dataset = rank_epoch(file_parts(paths), seed=0, epoch=0, rank=0, world=1)  # as a worker
        stream = iter(epoch_batches(dataset, {"resolution": resolution}, batch, 0, 0, 0))
        for _ in range(3):  # warm-up: the stream's start, compilation, allocator
            train_step(model, optimizer, next(stream), draw_keep(batch, data, generator), data,
                       device, fast)  # fmt: skip
        sync(device)
        waited, steps, started = 0.0, 0, time.perf_counter()
        while True:
            asked = time.perf_counter()
            images_batch = next(stream, None)
            waited += time.perf_counter() - asked
            if images_batch is None:
                break
            keep = draw_keep(len(images_batch), data, generator)
            train_step(model, optimizer, images_batch, keep, data, device, fast)
            steps += 1
        sync(device)
    elapsed = time.perf_counter() - started
    return {"wait_share": waited / elapsed, "images_per_s": steps * batch / elapsed}


def host_syncs(fast: FastPath, resolution: int, batch: int, device, steps: int = 5) -> int:
    """Calls that made the host wait for the GPU in `steps` warm training steps, counted by
    torch's sync debug mode: 0 means the host runs ahead and the GPU never idles between
    steps. (The trial loop adds one per 50 steps, its divergence check, and one per epoch.)"""
    step = trainer(fast, resolution, batch, device)
    for _ in range(3):
        step()
    sync(device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            for _ in range(steps):
                step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def packed(k: int, args) -> float:
    """Total images/s of k training processes sharing the device at once."""
    command = [sys.executable, "-m", "bench.gpu", "--worker", "--seconds", str(args.seconds)]
    command += ["--device", args.device] + (["--smoke"] if args.smoke else [])
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(k)]
    outputs = [p.communicate()[0] for p in processes]
    if any(p.returncode for p in processes):
        raise SystemExit(f"bench-gpu: a packed worker failed: {outputs}")
    return sum(json.loads(out.splitlines()[-1])["images_per_s"] for out in outputs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    parser.add_argument("--packs", default="1,2,4", help="how many trials share the device")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CPU tests)")
    parser.add_argument("--stream", type=int, default=20_000, help="images to stream; 0: skip")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    big, small, batch = (16, 8, 4) if args.smoke else (128, 64, 256)
    fast = resolve("bf16", "on", "off" if args.smoke else "on", device)
    if args.worker:
        print(json.dumps(measure(fast, small, batch, args.seconds, device)))
        return
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"bench-gpu on {name}, torch {torch.__version__}")
    plain = measure(PLAIN, big, batch, args.seconds, device)
    quick = measure(fast, big, batch, args.seconds, device)
    for label, figures in (("fp32 eager", plain), ("bf16+channels_last+compile", quick)):
        print(
            f"{big} px batch {batch} {label:>28}: {figures['images_per_s']:10.0f} images/s "
            f"{figures['tflops']:7.1f} TFLOP/s ({figures['tflops'] / args.peak_tflops:.1%} of "
            f"{args.peak_tflops:g} peak)"
        )
    print(f"speed-up of the fast path: {quick['images_per_s'] / plain['images_per_s']:.2f}x")
    waiting = measure(fast, small, batch, args.seconds, device)
    print(f"{small} px from resident uint8: batch wait {waiting['wait_share']:.2%} of step time")
    if device.type == "cuda":
        for name, path in (("fp32 eager", PLAIN), ("fast path", fast)):
            syncs = host_syncs(path, small, batch, device)
            print(f"host syncs in 5 training steps ({name}): {syncs}")
    if args.stream:
        streamed = streamed_wait(fast, small, batch, args.stream, device)
        print(
            f"{small} px streamed by Ray Data from {args.stream} images: batch wait "
            f"{streamed['wait_share']:.2%} of training time (target <= 5%), "
            f"{streamed['images_per_s']:.0f} images/s"
        )
    single = None
    for k in [int(n) for n in args.packs.split(",")]:
        total = packed(k, args)
        single = single or total
        print(f"{k} packed trial(s): {total:10.0f} images/s in total ({total / single:.2f}x one)")


if __name__ == "__main__":
    main()
