"""Training throughput against its limits: the trial loop under Ray Train against a bare PyTorch
loop, concurrent 1-CPU trials against one 2-thread trial, the time a trial spends reporting and
checkpointing, and deterministic mode against the default.

Trials run as real (tiny) sweeps and are read back from MLflow: `train_s` and
`train_images_per_s` time only the training pass of an epoch, `report_s` the previous epoch's
report and checkpoint. Steady
state is every epoch after the first (warm-up, allocator, first checkpoint).
"""

import statistics
import time

import numpy as np
import torch

from bench.rows import Row
from sweeps.define import ablation as ablations
from trainers import tracking
from trainers.config import ExperimentConfig
from trainers.evaluation import as_tensor, load_splits
from trainers.loop import build
from trainers.steps import draw_keep, epoch_seed, set_deterministic, train_epoch, train_step

EPOCHS = 4
BASE = {
    "model.bottleneck": "vq",
    "train.epochs": EPOCHS,
    "data.limit": 512,
    "train.batch_size": 64,
    "train.log_every": 0,
}


def steady(values: list[float]) -> float:
    """The median after the first epoch, which pays for warm-up."""
    return statistics.median(values[1:] if len(values) > 1 else values)


def bare_images_per_s(
    overrides: dict, deterministic: bool = False, train: np.ndarray | None = None
) -> list[float]:
    """The worker loop's training passes with no Ray Train: same model, data (`train`, else
    loaded here), seed and threads."""
    cfg = ExperimentConfig().with_overrides(overrides)
    torch.set_num_threads(cfg.resources.threads)
    set_deterministic(deterministic)
    device = torch.device("cpu")
    if train is None:
        train = load_splits(cfg, ("train",))["train"]
    images = as_tensor(train)
    model, optimizer = build(cfg, device)
    rates = []
    try:
        for epoch in range(cfg.train.epochs):
            generator = torch.Generator().manual_seed(epoch_seed(cfg.train.seed, epoch))
            started = time.perf_counter()
            train_epoch(model, optimizer, images, cfg.data, cfg.train.batch_size, generator, device)
            rates.append(len(images) / (time.perf_counter() - started))
    finally:
        set_deterministic(False)
    return rates


def bare_in_ray_task(overrides: dict) -> list[float]:
    """The bare loop in a Ray task holding the trial's CPUs: a fresh worker process with the
    environment Ray gives a Train worker (OMP_NUM_THREADS and the rest), and nothing else that
    the benchmark's own process has run or holds. Only the TorchTrainer wrapper then differs."""
    import ray

    cfg = ExperimentConfig().with_overrides(overrides)
    train = load_splits(cfg, ("train",))["train"]  # by the driver: the worker's cwd may differ
    task = ray.remote(num_cpus=cfg.resources.cpus_per_worker)(bare_images_per_s)
    return ray.get(task.remote(overrides, False, train))


def batch_wait_share(overrides: dict, steps: int = 40) -> tuple[float, float]:
    """(share of step time spent gathering the batch, mean step seconds): the loop's batches
    are index gathers from the in-memory uint8 tensor, timed around each synchronous CPU step."""
    cfg = ExperimentConfig().with_overrides(overrides)
    torch.set_num_threads(cfg.resources.threads)
    device = torch.device("cpu")
    images = as_tensor(load_splits(cfg, ("train",))["train"])
    model, optimizer = build(cfg, device)
    generator = torch.Generator().manual_seed(0)
    size = cfg.train.batch_size
    waited = stepped = 0.0
    for step in range(steps + 2):
        order = torch.randperm(len(images), generator=generator)[:size]
        started = time.perf_counter()
        batch = images[order]
        got = time.perf_counter()
        train_step(
            model, optimizer, batch, draw_keep(len(batch), cfg.data, generator), cfg.data, device
        )
        if step >= 2:  # warm-up
            waited += got - started
            stepped += time.perf_counter() - started
    return waited / stepped, stepped / steps


def sweep_histories(overrides: dict, seeds: int = 1) -> list[dict[str, list[float]]]:
    """Run a one-value sweep of `seeds` trials; each trial's per-epoch metric histories."""
    from sweeps.run.tuner import run_plan

    raw = {"vary": {"model.bottleneck": ["vq"]}, "baseline": "vq", "seeds": seeds}
    ablation = ablations.Ablation.from_dict("bench", raw)
    published = run_plan(ablations.plan(ablation, overrides))
    runs = tracking.sweep_runs(published.sweep_id)
    client = tracking.client()
    histories = []
    for run in runs:
        history = {}
        for name in ("train_images_per_s", "train_s", "report_s", "train_data_wait_share"):
            points = sorted(client.get_metric_history(run.info.run_id, name), key=lambda m: m.step)
            history[name] = [m.value for m in points]
        histories.append(history)
    return histories


def training_rows() -> list[Row]:
    one_cpu = BASE | {"resources.cpus_per_worker": 1}
    bare = steady(bare_in_ray_task(one_cpu))
    alone = sweep_histories(one_cpu)[0]
    wrapped = steady(alone["train_images_per_s"])
    rows = [
        Row(
            "Ray Train wrapper: trial loop / bare loop",
            wrapped / bare,
            0.95,
            True,
            "bare PyTorch loop in a 1-CPU Ray task: same model, data, seed, thread and process "
            "environment",
            {"trial_images_per_s": wrapped, "bare_images_per_s": bare},
        )
    ]
    rows.append(report_row(alone))
    pair = sweep_histories(one_cpu, seeds=2)
    together = sum(steady(h["train_images_per_s"]) for h in pair)
    two_threads = steady(
        sweep_histories(BASE | {"resources.cpus_per_worker": 2})[0]["train_images_per_s"]
    )
    rows.append(
        Row(
            "threads: two 1-CPU trials / one 2-thread trial",
            together / two_threads,
            0.9,
            True,
            "total images/s of one trial with 2 threads on the same 2 CPUs",
            {"two_trials_images_per_s": together, "one_trial_images_per_s": two_threads},
        )
    )
    share, step_s = batch_wait_share(one_cpu)
    rows.append(
        Row(
            "data: batch wait / step time",
            share,
            0.05,
            False,
            "the whole training step (gather, transfer, forward, backward, update)",
            {"step_s": step_s},
        )
    )
    default = steady(bare_images_per_s(one_cpu))
    strict = steady(bare_images_per_s(one_cpu, deterministic=True))
    rows.append(
        Row(
            "determinism (CPU): deterministic / default step rate",
            strict / default,
            0.9,
            True,
            "the same bare loop without torch.use_deterministic_algorithms",
            {"deterministic_images_per_s": strict, "default_images_per_s": default},
        )
    )
    return rows


def report_row(history: dict[str, list[float]]) -> Row:
    """Share of an epoch's wall time left to training once reporting and checkpointing are
    paid: train / (train + report), over the epochs whose report time the next one carried."""
    reports = history["report_s"][1:]  # epoch k carries epoch k-1's report time
    trains = history["train_s"][: len(reports)]
    share = sum(trains) / (sum(trains) + sum(reports))
    return Row(
        "reporting + checkpointing: training share of epoch time",
        share,
        0.98,
        True,
        "the same epochs with no report or checkpoint (their training passes alone)",
        {"report_s": statistics.fmean(reports), "train_s": statistics.fmean(trains)},
    )
