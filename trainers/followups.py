"""The group's next steps on a logged run: evaluate, transplant a bottleneck, fine-tune a few
parameters. Each result is a new MLflow run tagged `ovat.source_run` with its source's id.

They run in the calling process (CPU, or the GPU where the config asks for one and one is
present): they are seconds to minutes of work, not worth a Ray worker group.
"""

import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from data.splits import SPLITS
from models.registry import build_model
from trainers import audit, checkpoints, fastpath, keys, tracking
from trainers.config import ConfigError, ExperimentConfig
from trainers.evaluation import Evaluator, load_splits
from trainers.finetune import parse_patterns, select_trainable
from trainers.steps import seed_everything, train_steps
from trainers.transplant import transplant


@dataclass
class Source:
    run: object  # mlflow.entities.Run
    cfg: ExperimentConfig
    model: torch.nn.Module

    @property
    def name(self) -> str:
        return self.run.info.run_name


def load_source(ref: str) -> Source:
    run = tracking.resolve_run(ref)
    with tempfile.TemporaryDirectory() as tmp:
        folder = tracking.download_checkpoint(run.info.run_id, Path(tmp))
        cfg = checkpoints.load_config(folder)
        model = build_model(cfg.model)
        checkpoints.restore(folder, model, None)
    return Source(run, cfg, model)


def device_for(cfg: ExperimentConfig) -> torch.device:
    use_gpu = cfg.resources.use_gpu and torch.cuda.is_available()
    return torch.device("cuda" if use_gpu else "cpu")


def parse_splits(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in names if s not in SPLITS]
    if bad or not names:
        raise ConfigError(f"unknown split {bad[0] if bad else text!r}; valid: {', '.join(SPLITS)}")
    return names


def score(model: torch.nn.Module, cfg: ExperimentConfig, splits: list[str]) -> dict[str, float]:
    """Loss per split on the fixed eval masks, with the trial's thread count (bitwise equal)."""
    torch.set_num_threads(cfg.resources.threads)
    torch.set_float32_matmul_precision(cfg.train.matmul_precision)
    arrays, device = load_splits(cfg, splits), device_for(cfg)
    t = cfg.train
    fast = fastpath.resolve(t.precision, t.channels_last, "off", device)  # as the trial evaluated
    fastpath.convert(model.to(device), fast)
    return {f"{s}_loss": Evaluator(arrays[s], cfg)(model, device, fast)[0] for s in splits}


def log_followup(
    source: Source,
    kind: str,
    cfg: ExperimentConfig,
    metrics: dict,
    params: dict,
    model: torch.nn.Module | None = None,
    files: dict[str, str] | None = None,
    tags: dict | None = None,
) -> str:
    """One finished run beside its source, with a checkpoint that later steps can start from."""
    experiment = tracking.client().get_experiment(source.run.info.experiment_id).name
    all_tags = {
        keys.ROLE: kind,
        keys.SOURCE_RUN: source.run.info.run_id,
        keys.SOURCE_NAME: source.name,
        **(tags or {}),
    }
    if model is not None:
        all_tags[keys.FINGERPRINT] = audit.fingerprint(model)
    run_id = tracking.start_run(
        experiment, f"{kind}-{source.name}", all_tags, {**cfg.to_params(), **params}
    )
    tracking.log_metrics(run_id, metrics, step=0)
    if model is not None:
        with tempfile.TemporaryDirectory() as tmp:
            optimizer = torch.optim.AdamW(model.parameters())
            checkpoints.save(Path(tmp), model.cpu(), optimizer, cfg, 0, files)
            tracking.log_artifacts(run_id, Path(tmp), "checkpoint")
    tracking.end_run(run_id)
    return run_id


def evaluate_run(ref: str, data: dict | None = None, splits: str = "val,test") -> dict:
    """Score the run's checkpoint; `data` overrides (data.dataset, data.root) pick another set."""
    names = parse_splits(splits)
    source = load_source(ref)
    cfg = source.cfg.with_overrides(data) if data else source.cfg
    metrics = score(source.model, cfg, names)
    run_id = log_followup(source, "eval", cfg, metrics, {"eval.splits": splits})
    return {"run_id": run_id, "source": source, "metrics": metrics}


def transplant_run(ref: str, bottleneck: str, seed: int | None = None) -> dict:
    source = load_source(ref)
    cfg = source.cfg.with_overrides({"model.bottleneck": bottleneck})
    seed = source.cfg.train.seed if seed is None else seed
    model = transplant(source.model, cfg, seed)
    metrics = score(model, cfg, ["val", "test"])
    params = {"transplant.bottleneck": bottleneck, "transplant.seed": seed}
    run_id = log_followup(source, "transplant", cfg, metrics, params, model)
    return {"run_id": run_id, "source": source, "metrics": metrics, "model": model}


def finetune_run(
    ref: str, patterns: str, steps: int, shots: int = 0, lr: float | None = None, seed: int = 0
) -> dict:
    """Only parameters matching `patterns` learn; loss before and after, and the audit, logged."""
    if steps < 0 or shots < 0:
        raise ConfigError(f"STEPS and SHOTS must be >= 0, got {steps} and {shots}")
    source = load_source(ref)
    cfg, model = source.cfg, source.model
    chosen = select_trainable(model, parse_patterns(patterns))
    before = score(model, cfg, ["val", "test"])
    images = torch.from_numpy(load_splits(cfg, ["train"])["train"])
    images = images[:shots] if shots else images
    lr = cfg.train.lr if lr is None else lr
    watch = audit.UpdateAudit(model)
    metrics = {f"{k}_before": v for k, v in before.items()}
    if chosen and steps:
        seed_everything(seed)
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=cfg.train.weight_decay)
        batch = min(cfg.train.batch_size, len(images))
        trained = train_steps(
            model,
            optimizer,
            images,
            cfg.data,
            batch,
            steps,
            torch.Generator().manual_seed(seed),
            device_for(cfg),
        )
        metrics["train_loss"] = trained.mean
    metrics |= score(model, cfg, ["val", "test"])
    rows = watch.close()
    metrics |= audit.summary(rows)
    params = {
        "finetune.train": ",".join(parse_patterns(patterns)) or "none",
        "finetune.steps": steps,
        "finetune.shots": shots,
        "finetune.lr": lr,
        "finetune.seed": seed,
    }
    tags = {
        keys.TRAINABLE: ",".join(chosen),
        keys.UNTRAINED: ",".join(audit.untrained(rows)),
        keys.FROZEN_CHANGED: ",".join(audit.frozen_changed(rows)),
    }
    files = {"audit.md": audit.to_markdown(rows)}
    run_id = log_followup(source, "finetune", cfg, metrics, params, model, files, tags)
    return {"run_id": run_id, "source": source, "metrics": metrics, "audit": rows, "model": model}
