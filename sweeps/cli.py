"""`ovat`: the command line behind the Makefile. User errors are one line and exit code 2."""

import argparse
import sys
from collections.abc import Callable

from data.registry import DATASETS, UnknownDataset
from models.bottlenecks import BOTTLENECKS
from sweeps import ablation as ablations
from trainers.config import ConfigError

USER_ERRORS: tuple[type[Exception], ...] = (
    ablations.AblationError,
    ConfigError,
    UnknownDataset,
    FileNotFoundError,
    LookupError,
)


def parse_sets(items: list[str]) -> dict[str, str]:
    """['train.lr=1e-3', ...] -> {'train.lr': '1e-3'}; values are parsed by the config."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not key=value (e.g. train.lr=1e-3)")
        overrides[key.strip()] = value.strip()
    return overrides


def sweep_overrides(args: argparse.Namespace) -> dict[str, str]:
    overrides = parse_sets(args.set)
    shortcuts = {"train.epochs": args.epochs, "data.dataset": args.dataset}
    overrides |= {key: value for key, value in shortcuts.items() if value not in (None, "")}
    return overrides


def cmd_sweep(args: argparse.Namespace) -> None:
    ablation = ablations.load(args.ablation)
    overrides = sweep_overrides(args)
    seeds = int(args.seeds) if args.seeds not in (None, "") else ablation.seeds
    if seeds < 1:
        raise ConfigError(f"SEEDS must be >= 1, got {seeds}")
    trials = ablations.expand(ablation, overrides, seeds)  # every input checked before Ray
    print(
        f"ovat: {args.ablation}: {len(trials)} trials "
        f"({len(trials) // seeds} values x {seeds} seeds)",
        flush=True,
    )
    from sweeps.runner import run_sweep  # imports Ray: only once the input is known good

    outcome = run_sweep(ablation, overrides, seeds, verbose=args.verbose)
    print(outcome.markdown)
    print(f"ovat: wrote {outcome.paths['markdown']} and {outcome.paths['parquet']}")


def cmd_rank(args: argparse.Namespace) -> None:
    from sweeps.report import rebuild

    print(rebuild(args.sweep))


def cmd_list(args: argparse.Namespace) -> None:
    print("ablations: " + ", ".join(ablations.available()))
    print("bottlenecks: " + ", ".join(sorted(BOTTLENECKS)))
    print("datasets: " + ", ".join(sorted(DATASETS)))


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="ovat", description=__doc__)
    top.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = top.add_subparsers(dest="command", required=True)
    sweep = sub.add_parser("sweep", help="run one ablation as a Ray Tune sweep")
    sweep.add_argument("ablation", help="a file name in sweeps/ablations/ (without .yaml)")
    sweep.add_argument("--seeds", help="seeds 0..n-1 per value (default: the file's)")
    sweep.add_argument("--epochs", help="override train.epochs")
    sweep.add_argument("--dataset", help="override data.dataset")
    sweep.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config key, e.g. --set train.lr=1e-3",
    )
    sweep.add_argument("--verbose", type=int, default=0, help="Ray Tune's own verbosity (0-3)")
    sweep.set_defaults(func=cmd_sweep)
    rank = sub.add_parser("rank", help="rebuild a sweep's ranking table from MLflow")
    rank.add_argument("sweep", nargs="?", default="latest", help="sweep id or 'latest'")
    rank.set_defaults(func=cmd_rank)
    listing = sub.add_parser("list", help="list ablations, bottlenecks and datasets")
    listing.set_defaults(func=cmd_list)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    func: Callable[[argparse.Namespace], None] = args.func
    try:
        func(args)
    except USER_ERRORS as error:
        if args.debug:
            raise
        message = error.args[0] if isinstance(error, LookupError) and error.args else error
        print(f"ovat: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
