"""What every command shares: the user errors, the preflight, option parsing, the log file."""

import argparse
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from data.config import DataConfig
from data.layouts import LAYOUTS, LayoutError, check_root
from data.registry import DATASETS, UnknownDataset
from data.shards import PreparedDataError
from models.bottlenecks import UnknownBottleneck
from sweeps.define import ablation as ablations
from sweeps.errors import ResourceError, ResumeError, UnknownSweep
from trainers.config import ConfigError
from trainers.paths import StorageError, check_writable, data_dir, results_dir
from trainers.presets import PRESETS
from trainers.steps import TooFewImages
from trainers.tracking import RunNotFound, TrackingUnavailable, check_reachable

# The project's own error types, each a mistake or a missing thing the user can fix; anything
# else (a KeyError, a bug) keeps its traceback.
LOG_FILE = "ovat.log"  # results/<sweep id>/ovat.log: the libraries' logs at default verbosity
USER_ERRORS: tuple[type[Exception], ...] = (
    ablations.AblationError,
    ConfigError,
    UnknownDataset,
    UnknownBottleneck,
    LayoutError,
    PreparedDataError,
    ResourceError,
    ResumeError,
    RunNotFound,
    StorageError,
    TooFewImages,
    TrackingUnavailable,
    UnknownSweep,
)


@dataclass(frozen=True)
class Command:
    """One `ovat` subcommand: its name and help, the options it takes, and what it runs."""

    name: str
    help: str
    options: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], None]


def preflight(data: list[DataConfig] = ()) -> None:
    """Everything a sweep reads from or writes to, checked before Ray starts or a trial runs."""
    check_reachable()
    check_writable(results_dir(), "results folder")
    check_writable(data_dir(), "data folder")
    for cfg in data:
        if cfg.dataset in LAYOUTS:
            check_root(cfg.dataset, cfg.root)


def parse_sets(items: list[str]) -> dict[str, str]:
    """['train.lr=1e-3', ...] -> {'train.lr': '1e-3'}; values are parsed by the config."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not key=value (e.g. train.lr=1e-3)")
        overrides[key.strip()] = value.strip()
    return overrides


def int_option(name: str, text: str | None, default: int, minimum: int) -> int:
    """An integer option (SEEDS=, REPEATS=, ...) given as text, or its default."""
    if text in (None, ""):
        return default
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {text!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def absolute(path: str | None) -> str | None:
    """Source roots go into the config absolute: the logged config must work from any folder."""
    return str(Path(path).expanduser().resolve()) if path else path


def data_shortcuts(args: argparse.Namespace) -> dict[str, str | None]:
    return {
        "data.dataset": args.dataset,
        "data.root": absolute(args.root),
        "data.resolution": args.resolution,
    }


def sweep_overrides(args: argparse.Namespace) -> dict[str, str]:
    overrides = parse_sets(args.set)
    shortcuts = {"train.epochs": args.epochs, **data_shortcuts(args)}
    overrides |= {key: value for key, value in shortcuts.items() if value not in (None, "")}
    return overrides


@contextlib.contextmanager
def library_logs(args: argparse.Namespace, folder: Path) -> Iterator[Path | None]:
    """At the default verbosity the libraries' logs go to a file, and the command says where."""
    if args.verbose:
        yield None
        return
    from sweeps.run.console import quiet

    with quiet(folder / LOG_FILE) as log:
        print(f"ovat: Ray, Tune and MLflow log to {shown(log)}", flush=True)
        yield log


def shown(path: Path) -> str:
    """A path relative to the working folder where it is inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def add_data_options(command: argparse.ArgumentParser, required: bool = False) -> None:
    command.add_argument(
        *(["dataset"] if required else ["--dataset"]),
        help=f"a data variant: {', '.join(DATASETS)}" + ("" if required else " (data.dataset)"),
    )
    command.add_argument("--root", help="the variant's source folder (data.root)")
    command.add_argument("--resolution", help="training image side in px (data.resolution)")


def add_plan_options(command: argparse.ArgumentParser) -> None:
    """What decides a sweep's plan: the same options for `sweep` and `plan`."""
    command.add_argument("ablation", help="a file name in sweeps/ablations/ (without .yaml)")
    command.add_argument(
        "--seeds", help="seeds 0..n-1 per value (default: the file's), or auto: until decided"
    )
    command.add_argument("--min-seeds", help="SEEDS=auto: seeds every value gets (default 3)")
    command.add_argument("--max-seeds", help="SEEDS=auto: the most any value gets (default 10)")
    command.add_argument(
        "--budget", help="the most the sweep may spend: trials (60) or device-hours (2h)"
    )
    command.add_argument(
        "--gap", help="a difference in test loss to resolve: make plan says the seeds it needs"
    )
    command.add_argument("--first-seed", help="first seed (default 0): new seeds for a rerun")
    command.add_argument("--epochs", help="override train.epochs")
    command.add_argument("--preset", help=f"a named config under the base: {', '.join(PRESETS)}")
    add_data_options(command)
    command.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config key, e.g. --set train.lr=1e-3",
    )
