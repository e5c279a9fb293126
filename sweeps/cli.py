"""`ovat`: the command line behind the Makefile. User errors are one line and exit code 2."""

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from data.config import DataConfig
from data.layouts import LAYOUTS, LayoutError, check_root
from data.registry import DATASETS, UnknownDataset
from data.shards import PreparedDataError, read_manifest
from data.splits import SPLITS
from models.bottlenecks import BOTTLENECKS, UnknownBottleneck
from sweeps import ablation as ablations
from sweeps.errors import ResourceError, ResumeError, SweepInterrupted, UnknownSweep
from sweeps.plan import SweepPlan, new_sweep_id
from trainers import keys, tracking
from trainers.config import ConfigError, ExperimentConfig
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


def build_plan(ablation: ablations.Ablation, args: argparse.Namespace) -> SweepPlan:
    """The one plan of this command: every trial with its parsed config, checked before Ray."""
    seeds = int_option("SEEDS", args.seeds, ablation.seeds, minimum=1)
    first_seed = int_option("FIRST_SEED", args.first_seed, 0, minimum=0)
    overrides = sweep_overrides(args)
    return ablations.plan(ablation, overrides, seeds, first_seed, args.preset or "")


def describe_plan(ablation: ablations.Ablation, plan: SweepPlan) -> str:
    """What `make plan` prints: the base's settings, the trials, and the summary line last."""
    changed = plan.base.changes_from(ExperimentConfig())
    settings = " ".join(f"{k}={v}" for k, v in changed.items()) or "the defaults"
    lines = [
        f"ovat: plan of {ablation.name} ({ablation.source})"
        + (f": {ablation.description.strip()}" if ablation.description.strip() else ""),
        f"ovat: base: {settings}",
        f"ovat: baseline: {plan.baseline or 'none'}",
    ]
    data = plan.base.data
    if data.dataset in LAYOUTS and not data.root:
        lines.append(
            f"ovat: note: data.dataset {data.dataset} reads ROOT=<path> "
            f"({LAYOUTS[data.dataset].expects}); `make sweep` needs it"
        )
    width = max(len(v) for v in plan.values)
    by_value = {value: [t for t in plan.trials if t.value == value] for value in plan.values}
    for value, trials in by_value.items():
        seeds = ",".join(str(t.seed) for t in trials)
        setting = trials[0].setting or "(the base)"
        lines.append(f"  {value:<{width}}  {setting}  seeds {seeds}")
    return "\n".join([*lines, plan.summary()])


def cmd_plan(args: argparse.Namespace) -> None:
    """`make plan`: the trials a sweep would run; starts nothing."""
    ablation = ablations.load(args.ablation)
    print(describe_plan(ablation, build_plan(ablation, args)))


def cmd_sweep(args: argparse.Namespace) -> None:
    ablation = ablations.load(args.ablation)
    if ablation.probe is not None:
        return sweep_probe(ablation, sweep_overrides(args), args)
    if args.resume:
        return resume(ablation, args)
    if args.repeats:
        raise ConfigError(
            f"REPEATS={args.repeats} applies to probe ablations only "
            f"({', '.join(ablations.probe_files())}); use SEEDS= for {args.ablation}"
        )
    plan = build_plan(ablation, args)
    preflight([t.config.data for t in plan.trials])
    print(describe_plan(ablation, plan), flush=True)
    sweep_id = new_sweep_id(plan.name)
    with library_logs(args, results_dir() / sweep_id) as log:
        from sweeps.runner import run_plan  # imports Ray: only once the input is known good

        published = run_plan(plan, verbose=args.verbose, sweep_id=sweep_id)
    show_published(published, log)


@contextlib.contextmanager
def library_logs(args: argparse.Namespace, folder: Path) -> Iterator[Path | None]:
    """At the default verbosity the libraries' logs go to a file, and the command says where."""
    if args.verbose:
        yield None
        return
    from sweeps.console import quiet

    with quiet(folder / LOG_FILE) as log:
        print(f"ovat: Ray, Tune and MLflow log to {shown(log)}", flush=True)
        yield log


def shown(path: Path) -> str:
    """A path relative to the working folder where it is inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def show_published(published, log: Path | None) -> None:
    print(published.markdown)
    print(
        f"ovat: wrote {shown(published.paths['markdown'])} and {shown(published.paths['parquet'])}"
    )
    if log:
        print(f"ovat: library logs in {shown(log)}")
    from sweeps import leaderboard

    hint = "" if leaderboard.served() else " (make ui serves it)"
    print(f"ovat: leaderboard: {published.leaderboard}{hint}")
    if published.model:
        print(f"ovat: best model: mlflow.pytorch.load_model({published.model!r})")


def resume(ablation: ablations.Ablation, args: argparse.Namespace) -> None:
    """RESUME=1: the newest unfinished sweep of this ablation; RESUME=<sweep id>: that one.
    The sweep keeps the plan it started with (its plan.json): an option given again must equal
    what the sweep started with, and one that would change it is refused, naming both values."""
    preflight()
    from sweeps.runner import load_plan, resume_sweep, unfinished_sweep

    sweep_id = unfinished_sweep(ablation.name) if args.resume == "1" else args.resume
    plan = load_plan(sweep_id)
    if plan.name != ablation.name:
        raise ConfigError(f"sweep {sweep_id} is of ablation {plan.name!r}, not {ablation.name!r}")
    check_unchanged(ablation, plan, sweep_id, args)
    with library_logs(args, results_dir() / sweep_id) as log:
        published = resume_sweep(sweep_id, verbose=args.verbose)
    show_published(published, log)


def check_unchanged(
    ablation: ablations.Ablation, plan: SweepPlan, sweep_id: str, args: argparse.Namespace
) -> None:
    """Options given with RESUME= must be the ones the sweep started with (up-arrow + RESUME=1)."""

    def refuse(option: str, started: object, now: object) -> None:
        raise ConfigError(
            f"sweep {sweep_id} started with {option}={started}; resuming it with "
            f"{option}={now} would change it: drop {option}= or start a new sweep without RESUME"
        )

    if args.repeats:
        refuse("REPEATS", "(none: not a probe)", args.repeats)
    seeds = sorted({t.seed for t in plan.trials})
    if args.seeds and int_option("SEEDS", args.seeds, 1, 1) != plan.seeds:
        refuse("SEEDS", plan.seeds, args.seeds)
    if args.first_seed and int_option("FIRST_SEED", args.first_seed, 0, 0) != seeds[0]:
        refuse("FIRST_SEED", seeds[0], args.first_seed)
    overrides = sweep_overrides(args)
    if not overrides and not args.preset:
        return
    wanted = ablations.base_config(ablation, overrides, args.preset or "")
    keys = set(overrides) | set(PRESETS.get(args.preset or "", {}))
    for key in sorted(keys):
        if wanted.get(key) != plan.base.get(key):
            refuse(key, plan.base.get(key), wanted.get(key))


def sweep_probe(ablation: ablations.Ablation, overrides: dict, args: argparse.Namespace) -> None:
    """`make sweep ABLATION=placement`: the probe of the file's base config (REPEATS, FIRST_SEED)."""
    default = int(ablation.probe.get("repeats", 3))
    repeats = int_option("REPEATS", args.repeats, default, minimum=2)
    first_seed = int_option("FIRST_SEED", args.first_seed, -1, minimum=0)
    base = ablations.base_config(ablation, overrides, args.preset or "")  # checked before Ray
    preflight([base.data])
    print(f"ovat: {args.ablation}: a placement probe, {repeats} repeats per group", flush=True)
    from sweeps.probe import probe_ablation

    seed = None if first_seed < 0 else first_seed
    print(probe_ablation(ablation, base, repeats, seed, verbose=args.verbose))


def cmd_rank(args: argparse.Namespace) -> None:
    from sweeps.publish import rebuild

    published = rebuild(args.sweep)
    print(published.markdown)
    print(f"ovat: leaderboard: {published.leaderboard}")


def cmd_diff(args: argparse.Namespace) -> None:
    from sweeps.diff import diff

    text, path = diff(args.a, args.b)
    print(text)
    print(f"ovat: wrote {shown(path)} and attached it to {args.b}'s sweep run")


def cmd_leaderboard(args: argparse.Namespace) -> None:
    """`make ui` starts with this line: the newest sweep's leaderboard, or SWEEP's."""
    from sweeps import leaderboard
    from sweeps.publish import sweep_run

    if args.port:
        os.environ["OVAT_UI_PORT"] = args.port
    run = sweep_run(args.sweep)
    experiment = tracking.experiment_name(run.info.experiment_id)
    link = leaderboard.publish_view(run.data.tags[keys.SWEEP_ID], experiment)
    print(f"ovat: leaderboard: {link}")


def show(kind: str, outcome: dict) -> None:
    source = outcome["source"]
    scores = "  ".join(f"{k} {v:.6f}" for k, v in outcome["metrics"].items() if "loss" in k)
    print(f"ovat: {kind} of {source.name} ({source.run.info.run_id}): {scores}")
    logged = source.run.data.metrics.get("test_loss")
    if kind == "eval" and logged is not None and "test_loss" in outcome["metrics"]:
        delta = outcome["metrics"]["test_loss"] - logged
        print(f"ovat: source's logged test_loss {logged:.6f}, difference {delta:+.3g}")
    for row in outcome.get("audit", []):
        if row.trainable and not row.got_gradient:
            print(f"ovat: WARNING {row.name} is trainable but never got a gradient")
    print(f"ovat: logged as run {outcome['run_id']} (tag ovat.source_run={source.run.info.run_id})")


def cmd_eval(args: argparse.Namespace) -> None:
    from trainers.followups import evaluate_run

    data = {"data.dataset": args.dataset, "data.root": absolute(args.root)}
    show("eval", evaluate_run(args.run, {k: v for k, v in data.items() if v}, args.splits))


def cmd_transplant(args: argparse.Namespace) -> None:
    from trainers.followups import transplant_run

    if args.bottleneck not in BOTTLENECKS:
        raise ConfigError(
            f"unknown bottleneck {args.bottleneck!r}; valid: {', '.join(sorted(BOTTLENECKS))}"
        )
    show("transplant", transplant_run(args.run, args.bottleneck, args.seed))


def cmd_finetune(args: argparse.Namespace) -> None:
    from trainers.followups import finetune_run

    show("finetune", finetune_run(args.run, args.train, args.steps, args.shots, args.lr))


def cmd_probe(args: argparse.Namespace) -> None:
    from sweeps.probe import run_probe

    repeats = int_option("REPEATS", args.repeats, 3, minimum=2)
    preflight()
    print(run_probe(args.run, repeats, args.deterministic, verbose=args.verbose))


def cmd_prepare(args: argparse.Namespace) -> None:
    """Decode a variant once into Parquet shards, in parallel on the Ray cluster."""
    shortcuts = {**data_shortcuts(args), "data.protocol": args.protocol,
                 "data.split_seed": args.split_seed}  # fmt: skip
    cfg = ExperimentConfig().with_overrides({k: v for k, v in shortcuts.items() if v is not None})
    check_writable(data_dir(), "data folder")
    from data.registry import is_prepared, prepare

    state = "up to date"
    if not is_prepared(cfg.data, data_dir()):  # a wrong layout is reported before Ray starts
        state = "prepared"
        if cfg.data.dataset in LAYOUTS:  # decoded as Ray tasks; `sample` is built in-process
            from sweeps.runner import ensure_ray

            ensure_ray()
    folder = prepare(cfg.data, data_dir())
    manifest = read_manifest(folder)
    splits = ", ".join(f"{s} {manifest['splits'][s]['count']:,}" for s in SPLITS)
    print(f"ovat: {state}: {folder} ({splits} images at {cfg.data.resolution} px)")
    if manifest.get("protocol_detail"):
        print(f"ovat: splits: {manifest['protocol_detail']}")
    skipped = manifest.get("skipped", [])
    for entry in skipped[:5]:
        print(f"ovat: skipped {entry['path']}: {entry['reason']}")
    if len(skipped) > 5:
        print(
            f"ovat: ... and {len(skipped) - 5} more skipped, listed in {folder / 'manifest.json'}"
        )
    root = f" ROOT={cfg.data.root}" if cfg.data.root else ""
    print(
        f"ovat: next: make sweep ABLATION=bottleneck DATASET={cfg.data.dataset}{root} "
        f"RES={cfg.data.resolution}"
    )


def cmd_list(args: argparse.Namespace) -> None:
    print("ablations: " + ", ".join(ablations.available()))
    print("bottlenecks: " + ", ".join(sorted(BOTTLENECKS)))
    print("datasets: " + ", ".join(sorted(DATASETS)))
    print("presets: " + ", ".join(PRESETS))


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
    command.add_argument("--seeds", help="seeds 0..n-1 per value (default: the file's)")
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


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="ovat", description=__doc__)
    top.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = top.add_subparsers(dest="command", required=True)
    sweep = sub.add_parser("sweep", help="run one ablation as a Ray Tune sweep")
    add_plan_options(sweep)
    sweep.add_argument("--repeats", help="reruns per group of a probe ablation (placement)")
    sweep.add_argument(
        "--resume",
        help="1: finish the newest unfinished sweep of this ablation; or a sweep id",
    )
    sweep.add_argument("--verbose", type=int, default=0, help="Ray Tune's own verbosity (0-3)")
    sweep.set_defaults(func=cmd_sweep)
    planning = sub.add_parser("plan", help="print the trials a sweep would run; start nothing")
    add_plan_options(planning)
    planning.set_defaults(func=cmd_plan)
    rank = sub.add_parser("rank", help="rebuild a sweep's ranking table from MLflow")
    rank.add_argument("sweep", nargs="?", default="latest", help="sweep id or 'latest'")
    rank.set_defaults(func=cmd_rank)
    differ = sub.add_parser("diff", help="what changed between two sweeps, value by value")
    differ.add_argument("a", help="sweep id, 'latest' or 'previous'")
    differ.add_argument("b", help="sweep id, 'latest' or 'previous'")
    differ.set_defaults(func=cmd_diff)
    board = sub.add_parser("leaderboard", help="print the MLflow UI link of a sweep's ranking")
    board.add_argument("sweep", nargs="?", default="latest", help="sweep id or 'latest'")
    board.add_argument("--port", help="the port `make ui` serves on (default 5000)")
    board.set_defaults(func=cmd_leaderboard)
    evaluate = sub.add_parser("eval", help="evaluate a run's checkpoint on val and test")
    evaluate.add_argument("run", help="run id or run name")
    evaluate.add_argument("--dataset", help="another prepared data variant (default: the run's)")
    evaluate.add_argument("--root", help="that variant's source folder (data.root)")
    evaluate.add_argument("--splits", default="val,test", help="comma-separated splits")
    evaluate.set_defaults(func=cmd_eval)
    graft = sub.add_parser("transplant", help="swap in a fresh, untrained bottleneck and evaluate")
    graft.add_argument("run", help="run id or run name of the trained model")
    graft.add_argument("--bottleneck", required=True, help="the untrained bottleneck to put in")
    graft.add_argument("--seed", type=int, help="seed of the new bottleneck (default: the run's)")
    graft.set_defaults(func=cmd_transplant)
    tune = sub.add_parser("finetune", help="fine-tune only the parameters matching TRAIN")
    tune.add_argument("run", help="run id or run name")
    tune.add_argument("--train", required=True, help="name patterns, e.g. 'bottleneck.norm.*'")
    tune.add_argument("--steps", type=int, default=200, help="optimizer steps")
    tune.add_argument("--shots", type=int, default=0, help="train on the first N images only")
    tune.add_argument("--lr", type=float, help="learning rate (default: the run's)")
    tune.set_defaults(func=cmd_finetune)
    probe = sub.add_parser("probe", help="rerun a trial: same seed n times, other seeds n times")
    probe.add_argument("run", help="run id or run name of a trial")
    probe.add_argument("--repeats", help="reruns per group (>= 2, default 3)")
    probe.add_argument(
        "--deterministic",
        action="store_true",
        help="also rerun the same seed with deterministic algorithms",
    )
    probe.add_argument("--verbose", type=int, default=0, help="Ray Tune's own verbosity (0-3)")
    probe.set_defaults(func=cmd_probe)
    prep = sub.add_parser("prepare", help="decode a data variant once into Parquet shards")
    add_data_options(prep, required=True)
    prep.add_argument("--protocol", help="holdout or official (default: the variant's)")
    prep.add_argument("--split-seed", help="seed of the holdout cut (default 0)")
    prep.set_defaults(func=cmd_prepare)
    listing = sub.add_parser("list", help="list ablations, bottlenecks, datasets and presets")
    listing.set_defaults(func=cmd_list)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    func: Callable[[argparse.Namespace], None] = args.func
    try:
        func(args)
    except SweepInterrupted as error:
        print(f"ovat: {error}", file=sys.stderr)
        return 130
    except USER_ERRORS as error:
        if args.debug:
            raise
        print(f"ovat: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
