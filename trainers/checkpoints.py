"""What a checkpoint holds and how to read it back, for resume and for later evaluation."""

import json
from pathlib import Path

import torch

from trainers.config import ConfigError, ExperimentConfig

MODEL_FILE, OPTIMIZER_FILE, STATE_FILE, CONFIG_FILE = (
    "model.pt",
    "optimizer.pt",
    "state.json",
    "config.json",
)


def save(
    folder: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    cfg: ExperimentConfig,
    epoch: int,
    extra: dict[str, str | bytes] | None = None,
    resumes: int = 0,
    history: list[dict] | None = None,
) -> Path:
    """Weights, optimizer state, epoch, how often the trial resumed, and config; `extra` adds
    text files (the audit)."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / MODEL_FILE)
    torch.save(optimizer.state_dict(), folder / OPTIMIZER_FILE)
    state = {"epoch": epoch, "resumes": resumes, "history": history or []}
    (folder / STATE_FILE).write_text(json.dumps(state))
    (folder / CONFIG_FILE).write_text(json.dumps(cfg.to_flat(), indent=2))
    for filename, content in (extra or {}).items():
        if isinstance(content, bytes):
            (folder / filename).write_bytes(content)
        else:
            (folder / filename).write_text(content)
    return folder


def load_config(folder: Path) -> ExperimentConfig:
    return ExperimentConfig.from_flat(json.loads((Path(folder) / CONFIG_FILE).read_text()))


def restore(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None) -> int:
    """Load weights (and optimizer state) in place; returns the number of finished epochs."""
    folder = Path(folder)
    state = torch.load(folder / MODEL_FILE, map_location="cpu", weights_only=True)
    check_architecture(folder, state, model)
    model.load_state_dict(state)
    if optimizer is not None:
        state = torch.load(folder / OPTIMIZER_FILE, map_location="cpu", weights_only=True)
        optimizer.load_state_dict(state)
    return read_state(folder)["epoch"]


def read_state(folder: Path) -> dict:
    """{'epoch': finished epochs, 'resumes': restarts from a checkpoint so far, 'history': every
    finished epoch's reported results}."""
    return {"resumes": 0, "history": []} | json.loads((Path(folder) / STATE_FILE).read_text())


def check_architecture(folder: Path, state: dict, model: torch.nn.Module) -> None:
    """One line naming what differs, instead of torch's page of missing and unexpected keys."""
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in state.items()}
    problems = [f"missing {k}" for k in want if k not in have]
    problems += [f"unexpected {k}" for k in have if k not in want]
    problems += [
        f"{k} is {have[k]}, the model wants {want[k]}"
        for k in want
        if k in have and have[k] != want[k]
    ]
    if problems:
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ConfigError(
            f"checkpoint {folder} does not match the model's architecture: "
            f"{'; '.join(problems[:3])}{more}"
        )
