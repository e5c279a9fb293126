"""The Ray Train worker loop: single-device code plus the few calls that make it data-parallel.

Every rank trains on its slice of the train split; eval sums are all-reduced before they are
reported, because Tune only hears rank 0. Only rank 0 writes checkpoints.
"""

import dataclasses
import functools
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import ray
import ray.train
import ray.train.torch
import torch
import torch.distributed as dist

from models.autoencoder import Autoencoder, parameter_counts
from trainers import audit, checkpoints, fastpath
from trainers.config import ExperimentConfig, TrainConfig
from trainers.evaluation import Evaluator, as_tensor
from trainers.flops import train_flops_per_image
from trainers.steps import (
    STEP_METRICS,
    Diverged,
    DivergenceGuard,
    Sums,
    resident,
    seed_everything,
    set_deterministic,
    train_epoch,
)


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """Independent, reproducible stream per (seed, epoch, rank): resume repeats the same epochs."""
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])


def all_reduce(sums: Sums, device: torch.device) -> Sums:
    if not dist.is_available() or not dist.is_initialized():
        return sums
    packed = torch.tensor([sums.loss, float(sums.count)], dtype=torch.float64, device=device)
    dist.all_reduce(packed)
    return Sums(packed[0].item(), int(packed[1].item()))


def agree_min(step: int, device: torch.device) -> int:
    """The smallest value over all ranks: every rank then stops at the same divergence check."""
    if not dist.is_available() or not dist.is_initialized():
        return step
    packed = torch.tensor([step], dtype=torch.int64, device=device)
    dist.all_reduce(packed, op=dist.ReduceOp.MIN)
    return int(packed.item())


def nvidia_driver_version() -> str:
    """The NVIDIA kernel driver's version from /proc; torch has no public call for it."""
    try:
        first = Path("/proc/driver/nvidia/version").read_text().splitlines()[0]
    except (OSError, IndexError):
        return "unknown"
    words = first.split()
    return next((w for w in words if w[:1].isdigit() and "." in w), "unknown")


def placement(device: torch.device, deterministic: bool) -> dict[str, str]:
    """Where this trial ran, for the instability probe: host, device, library versions."""
    info = {
        "host": platform.node(),
        "node_ip": ray.util.get_node_ip_address(),
        "node_id": ray.get_runtime_context().get_node_id(),
        "pid": str(os.getpid()),  # rank 0's worker process: what to look at (or kill) on a node
        "device": str(device),
        "torch": torch.__version__,
        "deterministic": str(deterministic),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info |= {
            "gpu_index": str(device.index if device.index is not None else 0),
            "gpu_driver": nvidia_driver_version(),
            "gpu_name": props.name,
            "gpu_uuid": str(getattr(props, "uuid", "")),
            "cuda": str(torch.version.cuda),
            "cudnn": str(torch.backends.cudnn.version()),
        }
    return {f"placement.{key}": value for key, value in info.items()}


def build(cfg: ExperimentConfig, device: torch.device):
    seed_everything(cfg.train.seed)
    model = Autoencoder(cfg.model)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    return model, optimizer


def resume(model: Autoencoder, optimizer: torch.optim.Optimizer) -> tuple[int, int]:
    """(finished epochs, resumes including this one) from the last checkpoint, or (0, 0).

    A worker-group restart (FailureConfig) and a restored sweep both come back through here."""
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return 0, 0
    with checkpoint.as_directory() as folder:
        start = checkpoints.restore(Path(folder), model, optimizer)
        return start, checkpoints.read_state(Path(folder))["resumes"] + 1


def report(
    metrics: dict,
    model,
    optimizer,
    cfg: ExperimentConfig,
    epoch: int,
    rank: int,
    extra: dict[str, str] | None = None,
    resumes: int = 0,
) -> None:
    """Every rank must call report; only rank 0 attaches the checkpoint."""
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = None
        if rank == 0:
            checkpoints.save(Path(folder), model, optimizer, cfg, epoch, extra, resumes)
            checkpoint = ray.train.Checkpoint.from_directory(folder)
        ray.train.report(metrics, checkpoint=checkpoint)


def train_loop_per_worker(loop_config: dict) -> None:
    entered = time.time()
    cfg = ExperimentConfig.from_flat(loop_config["config"])
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    torch.set_num_threads(cfg.resources.threads)
    if cfg.train.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        set_deterministic(True)
    device = ray.train.torch.get_device()
    t = cfg.train
    fast = fastpath.resolve(t.precision, t.channels_last, t.compile, device)
    splits = ray.get(loop_config["data"])
    data_at = time.time()
    train_images = resident(as_tensor(splits["train"])[rank::world], device)
    flops_per_image = loop_config.get("flops_per_image") or train_flops_per_image(
        cfg.model, cfg.data
    )  # counted by the sweep's driver; counted here for a trial planned before it did
    reduce = functools.partial(all_reduce, device=device)
    val, test = (Evaluator(splits[n], cfg, rank, world, reduce) for n in ("val", "test"))

    model, optimizer = build(cfg, device)
    start, resumes = resume(model, optimizer)
    bare = model
    trained = fastpath.prepare(ray.train.torch.prepare_model(model), fast)
    counts = parameter_counts(bare)
    watch = audit.UpdateAudit(bare)
    # Trial start to first training step, and its parts: the Train controller and worker group
    # (processes, imports, process group), the data from the object store, the model (and, after
    # a restart, the restore). Wall clocks: the trial and its workers may be on other nodes.
    ready = time.time()
    started_at = loop_config.get("started_at", entered)
    startup = {
        "startup_s": ready - started_at,
        "startup.workers_s": entered - started_at,
        "startup.data_s": data_at - entered,
        "startup.model_s": ready - data_at,
        "startup.first_step_at": ready,  # unix s: against Tune's start of the trial (MLflow)
    }
    report_s = 0.0
    for epoch in range(start, cfg.train.epochs):
        generator = torch.Generator().manual_seed(epoch_seed(cfg.train.seed, epoch, rank))
        started = time.perf_counter()
        guard = DivergenceGuard(epoch + 1, agree=functools.partial(agree_min, device=device))
        try:
            train = train_epoch(
                trained,
                optimizer,
                train_images,
                cfg.data,
                cfg.train.batch_size,
                generator,
                device,
                guard,
                fast,
            )
        except Diverged as error:
            # A result, not an exception: retrying a deterministic divergence would only
            # repeat it, and the sweep's callback ends the run FAILED with this reason.
            ray.train.report({"epoch": epoch + 1, "ovat.diverged": str(error)})
            return
        train_s = time.perf_counter() - started
        val_loss, val_stats = val(bare, device, fast)  # not compiled: `make eval` repeats it
        metrics = {
            "epoch": epoch + 1,
            "train_loss": all_reduce(train, device).mean,
            "train_s": train_s,  # the training pass alone, no eval, report or checkpoint
            "train_images_per_s": len(train_images) / train_s,
            "achieved_tflops": flops_per_image * len(train_images) / train_s / 1e12,
            "report_s": report_s,  # the previous epoch's report and checkpoint
            "val_loss": val_loss,
            "resumes": resumes,
            **{f"val_{k}": v for k, v in val_stats.items()},
        }
        if cfg.train.log_every:
            metrics[STEP_METRICS] = {"train_loss_step": step_points(train, epoch, cfg.train)}
        if epoch == start:  # the first epoch of this worker group
            metrics |= placement(device, cfg.train.deterministic)
            metrics |= startup | {"flops_per_image": flops_per_image}
            metrics |= {f"ovat.fast.{k}": str(v) for k, v in dataclasses.asdict(fast).items()}
        extra = None
        if epoch + 1 == cfg.train.epochs:
            test_loss, test_stats = test(bare, device, fast)
            metrics |= {
                "test_loss": test_loss,
                **counts,
                **{f"test_{k}": v for k, v in test_stats.items()},
            }
            rows = watch.close()
            metrics |= audit_metrics(rows, bare)
            extra = audit_files(rows)
        reporting = time.perf_counter()
        report(metrics, bare, optimizer, cfg, epoch + 1, rank, extra, resumes)
        report_s = time.perf_counter() - reporting


def step_points(train: Sums, epoch: int, cfg: TrainConfig) -> list[list[float]]:
    """[[global step, loss], ...] every `log_every` steps of the epoch (rank 0's batches)."""
    per_epoch = len(train.step_means)
    return [
        [epoch * per_epoch + i, loss]
        for i, loss in enumerate(train.step_means, 1)
        if i % cfg.log_every == 0
    ]


def audit_metrics(rows: list[audit.ParamAudit], model: Autoencoder) -> dict:
    """Counts as metrics; names and the fingerprint as `ovat.*` strings that become tags."""
    return {
        **audit.summary(rows),
        "ovat.untrained": ",".join(audit.untrained(rows)),
        "ovat.frozen_changed": ",".join(audit.frozen_changed(rows)),
        "ovat.fingerprint": audit.fingerprint(model),
        "ovat.weights_hash": audit.weights_hash(model),
    }


def audit_files(rows: list[audit.ParamAudit]) -> dict[str, str]:
    return {
        "audit.md": audit.to_markdown(rows),
        "audit.json": json.dumps(audit.as_records(rows), indent=2),
    }
