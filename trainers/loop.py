"""The Ray Train worker loop: set up, train and report each epoch, score the test split last.

Single-device code plus the few calls that make it data-parallel: every rank trains on its
slice of the train split; eval sums are all-reduced before they are reported, because Tune only
hears rank 0. Only rank 0 writes checkpoints.
"""

import dataclasses
import functools
import json
import os
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import ray
import ray.train
import ray.train.torch
import torch

from data.registry import layout
from data.row_groups import train_parts
from models.registry import build_model, parameter_counts
from trainers import audit, checkpoints, fastpath, hardware, keys, streaming
from trainers.config import ExperimentConfig, TrainConfig
from trainers.distributed import agree_min, all_reduce, all_reduce_batch_means, all_reduce_means
from trainers.evaluation import Evaluator, as_tensor
from trainers.objectives import objective
from trainers.placement import placement, process_started_at
from trainers.previews import PREVIEW_IMAGES
from trainers.steps import (
    Diverged,
    DivergenceGuard,
    Shard,
    Sums,
    epoch_seed,
    resident,
    seed_epoch_globals,
    seed_everything,
    set_deterministic,
    train_batches,
    train_epoch,
)


def build(cfg: ExperimentConfig, device: torch.device):
    """The model on its device before the optimizer exists: a restored optimizer state is cast
    to each parameter's device when it is loaded, so parameters moved later (by prepare_model)
    would leave AdamW's moments on the CPU and fail the first step of every resumed GPU trial."""
    seed_everything(cfg.train.seed)
    model = build_model(cfg.model).to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    return model, optimizer


def resume(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[int, int, list[dict], str]:
    """(finished epochs, resumes including this one, their results, the checkpoint's path) from
    the last checkpoint, or (0, 0, [], ""). A worker-group restart (FailureConfig) and a restored
    sweep both come back through here."""
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return 0, 0, [], ""
    with checkpoint.as_directory() as folder:
        start = checkpoints.restore(Path(folder), model, optimizer)
        state = checkpoints.read_state(Path(folder))
        return start, state["resumes"] + 1, state["history"], checkpoint.path


def replayed(history: list[dict], checkpoint_path: str) -> list[dict]:
    """The restored epochs' results, the last naming the checkpoint they come from: a trial
    restarted after its final checkpoint trains no further epoch and reports no new one."""
    if not history:
        return []
    return [*history[:-1], {**history[-1], keys.RESTORED_CHECKPOINT: checkpoint_path}]


@dataclass
class Worker:
    """Everything one rank trains with, built once by `setup`."""

    cfg: ExperimentConfig
    rank: int
    world: int
    device: torch.device
    fast: fastpath.FastPath
    train_images: torch.Tensor | None  # the whole split in memory, uint8 (None: streamed)
    val: Evaluator
    test: Evaluator
    model: torch.nn.Module  # the plain model: evaluation, checkpoints, the audit
    trained: torch.nn.Module  # what training steps call (DDP, compiled)
    optimizer: torch.optim.Optimizer
    start: int  # epochs finished before this worker group (from a checkpoint)
    resumes: int
    history: list[dict]  # the results reported for those epochs, kept in the checkpoint
    restored_from: str  # the checkpoint those epochs came from ("" for a fresh start)
    watch: audit.UpdateAudit
    flops_per_image: float
    startup: dict[str, float]  # trial start to first step, and its parts
    data_wait_s: float = 0.0  # the last streamed pass: time spent waiting for batches
    train_folder: str = ""  # the prepared split where the train split is streamed
    streams: object = None  # streamed trials: `streaming.EpochStreams`, opened by the first pass

    def first_epoch_metrics(self) -> dict:
        """Reported once per worker group: where it runs, how it started, how it computes."""
        return {
            **placement(self.device, self.cfg.train.deterministic),
            **self.startup,
            "flops_per_image": self.flops_per_image,
            **{f"ovat.fast.{k}": str(v) for k, v in dataclasses.asdict(self.fast).items()},
        }


def setup(loop_config: dict) -> Worker:
    """Threads, device, data from the object store, model and optimizer (restored from the last
    checkpoint after a restart), and the start-up profile: the Train controller and worker group
    (processes, imports, process group), the data, the model. Wall clocks: the trial and its
    workers may be on other nodes."""
    entered = time.time()
    cfg: ExperimentConfig = loop_config["config"]
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    hardware.check_isa(cfg.resources.cpu_isa, ray.util.get_node_ip_address())
    torch.set_num_threads(cfg.resources.threads)
    torch.set_float32_matmul_precision(cfg.train.matmul_precision)
    if cfg.train.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        set_deterministic(True)
    device = ray.train.torch.get_device()
    train = cfg.train
    fast = fastpath.resolve(train.precision, train.channels_last, train.compile, device)
    splits = ray.get(loop_config["data"])  # val and test; train too unless it is streamed
    data_at = time.time()
    reduce = functools.partial(all_reduce, device=device)
    reduce_stats = functools.partial(all_reduce_batch_means, device=device)
    model, optimizer = build(cfg, device)
    start, resumes, history, restored_from = resume(model, optimizer)
    trained = fastpath.convert(ray.train.torch.prepare_model(model), fast)
    ready = time.time()
    started_at = loop_config.get("started_at", entered)
    spawned_at = min(max(process_started_at() or started_at, started_at), entered)
    return Worker(
        cfg=cfg,
        rank=rank,
        world=world,
        device=device,
        fast=fast,
        train_images=resident(as_tensor(splits["train"]), device) if "train" in splits else None,
        val=Evaluator(splits["val"], cfg, rank, world, reduce, reduce_stats),
        test=Evaluator(splits["test"], cfg, rank, world, reduce, reduce_stats),
        model=model,
        trained=trained,
        optimizer=optimizer,
        start=start,
        resumes=resumes,
        history=history,
        restored_from=restored_from,
        watch=audit.UpdateAudit(model),
        flops_per_image=loop_config["flops_per_image"],
        train_folder=loop_config.get("train_folder", ""),
        startup={
            "startup_s": ready - started_at,
            "startup.workers_s": entered - started_at,
            # its parts: the Train controller and this worker process started, then its imports
            "startup.worker_spawn_s": spawned_at - started_at,
            "startup.worker_imports_s": entered - spawned_at,
            "startup.data_s": data_at - entered,
            "startup.model_s": ready - data_at,
            "startup.first_step_at": ready,  # unix s: against Tune's start of the trial
        },
    )


def train_loop_per_worker(loop_config: dict) -> None:
    worker = setup(loop_config)
    # A result the driver never received (the sweep was stopped or its driver killed after the
    # checkpoint was written) is reported again; MLflow ignores the ones it already holds, as
    # each keeps the timestamp of its first report.
    for past in replayed(worker.history, worker.restored_from):
        ray.train.report(past)
    try:
        train_epochs(worker)
    finally:  # a streamed trial's look-ahead thread ends with the trial, however it ends
        if worker.streams is not None:
            worker.streams.close()


def train_epochs(worker: Worker) -> None:
    epochs = worker.cfg.train.epochs
    report_s = 0.0
    for epoch in range(worker.start, epochs):
        metrics = train_and_validate(worker, epoch)
        if metrics is None:
            return  # diverged: reported as a result, the trial ends
        metrics["report_s"] = report_s  # the previous epoch's report and checkpoint
        if epoch == worker.start:
            metrics |= worker.first_epoch_metrics()
        files = None
        if epoch + 1 == epochs:
            scores, files = final_scores(worker)
            metrics |= scores
        reporting = time.perf_counter()
        report_epoch(worker, metrics, epoch + 1, files)
        report_s = time.perf_counter() - reporting


def train_and_validate(worker: Worker, epoch: int) -> dict | None:
    """One epoch's training pass and validation; None after reporting a divergence."""
    cfg, device = worker.cfg, worker.device
    guard = DivergenceGuard(epoch + 1, agree=functools.partial(agree_min, device=device))
    seed_epoch_globals(cfg.train.seed, epoch, worker.rank)
    started = time.perf_counter()
    try:
        train_pass = in_memory_pass if worker.train_images is not None else streamed_pass
        train = train_pass(worker, epoch, guard)
    except Diverged as error:
        # A result, not an exception: retrying a deterministic divergence would only repeat
        # it, and the sweep's callback ends the run FAILED with this reason.
        ray.train.report({keys.EPOCH: epoch + 1, keys.DIVERGED: str(error)})
        return None
    train_s = time.perf_counter() - started
    val_loss, val_stats = worker.val(worker.model, device, worker.fast)  # uncompiled, as eval
    trial = all_reduce(train, device)
    images = trial.count  # every rank's: the trial's rate, not rank 0's share of it
    metrics = {
        keys.EPOCH: epoch + 1,
        keys.TRAIN_LOSS: trial.mean,
        "train_s": train_s,  # rank 0's training pass alone (ranks step together under DDP)
        keys.IMAGES_PER_S: images / train_s,
        **({"train_data_wait_share": worker.data_wait_s / train_s} if worker.data_wait_s else {}),
        "achieved_tflops": worker.flops_per_image * images / train_s / 1e12,
        keys.VAL_LOSS: val_loss,
        "resumes": worker.resumes,
        **{f"val_{k}": v for k, v in val_stats.items()},
    }
    if cfg.train.log_every:
        means = all_reduce_means(train.step_means, device)  # over the global batch, per step
        metrics[keys.STEP_METRICS] = {keys.STEP_LOSS: step_points(means, epoch, cfg.train)}
    return metrics


def in_memory_pass(worker: Worker, epoch: int, guard: DivergenceGuard) -> Sums:
    """This rank's slice of every global batch of the epoch's shuffle of the whole split."""
    cfg = worker.cfg
    generator = torch.Generator().manual_seed(epoch_seed(cfg.train.seed, epoch))
    return train_epoch(
        worker.trained,
        worker.optimizer,
        worker.train_images,
        cfg.data,
        cfg.train.batch_size,
        generator,
        worker.device,
        guard,
        worker.fast,
        Shard(worker.rank, worker.world),
    )


def streamed_pass(worker: Worker, epoch: int, guard: DivergenceGuard) -> Sums:
    """This rank's rows of the epoch, streamed by Ray Data; masks drawn per batch
    from the seed, the epoch and the rank (`trainers/streaming.py`)."""
    cfg = worker.cfg
    if worker.streams is None:
        parts = train_parts(cfg.data, worker.train_folder)
        worker.streams = streaming.EpochStreams(
            lambda e: streaming.epoch_batches(
                streaming.rank_epoch(parts, cfg.train.seed, e, worker.rank, worker.world),
                layout(cfg.data),
                cfg.train.batch_size,
                cfg.train.seed,
                e,
                worker.rank,
            ),
            cfg.train.epochs,
        )
    batches = worker.streams.batches(epoch)
    generator = torch.Generator().manual_seed(epoch_seed(cfg.train.seed, epoch, worker.rank))
    timed = WaitTimed(batches)
    sums = train_batches(
        worker.trained,
        worker.optimizer,
        timed,
        cfg.data,
        generator,
        worker.device,
        guard,
        worker.fast,
    )
    worker.data_wait_s = timed.waited
    return sums


class WaitTimed:
    """An iterator that adds up the time its consumer waited for each item: the data wait of
    a streamed pass (steps on the CPU and synchronised GPU steps run between the waits)."""

    def __init__(self, items: Iterable):
        self.items, self.waited = iter(items), 0.0

    def __iter__(self):
        return self

    def __next__(self):
        started = time.perf_counter()
        try:
            return next(self.items)
        finally:
            self.waited += time.perf_counter() - started


def final_scores(worker: Worker) -> tuple[dict, dict[str, str | bytes]]:
    """Test loss, parameter counts and the parameter-update audit; the audit's files."""
    test_loss, test_stats = worker.test(worker.model, worker.device, worker.fast)
    rows = worker.watch.close()
    metrics = {
        keys.TEST_LOSS: test_loss,
        **parameter_counts(worker.model),
        **{f"test_{k}": v for k, v in test_stats.items()},
        **audit.summary(rows),
        keys.UNTRAINED: ",".join(audit.untrained(rows)),
        keys.FROZEN_CHANGED: ",".join(audit.frozen_changed(rows)),
        keys.FINGERPRINT: audit.fingerprint(worker.model),
        keys.WEIGHTS_HASH: audit.weights_hash(worker.model),
    }
    files: dict[str, str | bytes] = {
        "audit.md": audit.to_markdown(rows),
        "audit.json": json.dumps(audit.as_records(rows), indent=2),
    }
    if worker.rank == 0:  # rank 0 writes the checkpoint, and so the picture in it
        examples, keep = worker.test.first(PREVIEW_IMAGES)
        preview = objective(worker.cfg.data).preview
        name, content = preview(worker.model, examples, keep, worker.cfg.data, worker.device,
                                worker.fast)  # fmt: skip
        files[name] = content
    return metrics, files


def report_epoch(
    worker: Worker, metrics: dict, epochs_done: int, files: dict[str, str | bytes] | None
) -> None:
    """Every rank must call `ray.train.report`; only rank 0 attaches the checkpoint, which
    keeps every epoch's results so far."""
    metrics[keys.REPORTED_AT] = int(time.time() * 1000)
    worker.history.append(metrics)
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = None
        if worker.rank == 0:
            checkpoints.save(
                Path(folder),
                worker.model,
                worker.optimizer,
                worker.cfg,
                epochs_done,
                files,
                worker.resumes,
                worker.history,
            )
            checkpoint = ray.train.Checkpoint.from_directory(folder)
        ray.train.report(metrics, checkpoint=checkpoint)


def step_points(step_means: list[float], epoch: int, cfg: TrainConfig) -> list[list[float]]:
    """[[global step, loss], ...] every `log_every` steps of the epoch."""
    per_epoch = len(step_means)
    return [
        [epoch * per_epoch + i, loss]
        for i, loss in enumerate(step_means, 1)
        if i % cfg.log_every == 0
    ]
