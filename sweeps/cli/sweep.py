"""`ovat plan` and `ovat sweep`: an ablation file -> its plan -> a Ray Tune sweep (or a resume,
or the probe an ablation file names) -> the ranking."""

import argparse
import time
from pathlib import Path

from data.layouts import LAYOUTS
from sweeps.cli import seeding
from sweeps.cli.common import (
    Command,
    add_plan_options,
    int_option,
    library_logs,
    preflight,
    shown,
    sweep_overrides,
)
from sweeps.define import ablation as ablations
from sweeps.define.cost import parse_gap
from sweeps.define.plan import SweepPlan, new_sweep_id
from sweeps.run.waits import tracking_writers, waits
from trainers.config import ConfigError, ExperimentConfig
from trainers.paths import results_dir
from trainers.presets import PRESETS
from trainers.tracking import tracking_uri


def build_plan(ablation: ablations.Ablation, args: argparse.Namespace) -> SweepPlan:
    """The one plan of this command: every trial with its parsed config, checked before Ray."""
    first_seed = int_option("FIRST_SEED", args.first_seed, 0, minimum=0)
    rule = seeding.seed_rule(args)
    parse_gap(args.gap)  # refused with the rest of the input, before anything is measured
    seeds = None if rule else int_option("SEEDS", args.seeds, ablation.seeds, minimum=1)
    plan = ablations.plan(
        ablation, sweep_overrides(args), seeds, first_seed, args.preset or "", rule
    )
    seeding.check_budget(args, rule, len(plan.values), len(plan.trials))
    return plan


def costed(plan: SweepPlan, args: argparse.Namespace):
    """The plan within BUDGET=<n>h, and its estimated cost and resolution (a budget it exceeds
    is refused before Ray starts)."""
    from sweeps.run.estimate import estimate  # imports torch: once the input is known good

    estimated = estimate(plan, parse_gap(args.gap))
    return seeding.within_hours(args, plan, estimated.cost), estimated


def describe_plan(ablation: ablations.Ablation, plan: SweepPlan, estimated=None) -> str:
    """What `make plan` prints: the base's settings, the trials, the cost and resolution, and
    the summary line last."""
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
        if plan.rule:
            seeds = f"{trials[0].seed}..{trials[-1].seed} as the race needs them"
        setting = trials[0].setting or "(the base)"
        lines.append(f"  {value:<{width}}  {setting}  seeds {seeds}")
    if plan.rule:
        lines.append(seeding.describe(plan.rule, len(plan.values)))
    if estimated is not None:
        from sweeps.run.estimate import describe

        lines += describe(estimated, plan)
    return "\n".join([*lines, plan.summary()])


def cmd_plan(args: argparse.Namespace) -> None:
    """`make plan`: the trials a sweep would run, and their cost; starts no trial."""
    ablation = ablations.load(args.ablation)
    plan = build_plan(ablation, args)
    data = plan.base.data
    if data.dataset in LAYOUTS and not data.root:  # said by the plan's note; nothing to count
        print(describe_plan(ablation, plan))
        return
    print(describe_plan(ablation, *costed(plan, args)))


def cmd_sweep(args: argparse.Namespace) -> None:
    waits()  # a bad OVAT_*_S value is one line now, not a traceback inside Tune's loop later
    tracking_writers(tracking_uri())
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
    plan, estimated = costed(plan, args)
    print(describe_plan(ablation, plan, estimated), flush=True)
    sweep_id = new_sweep_id(plan.name)
    started = time.monotonic()
    with library_logs(args, results_dir() / sweep_id) as log:
        from sweeps.run.tuner import run_plan  # imports Ray: only once the input is known good

        published = run_plan(plan, verbose=args.verbose, sweep_id=sweep_id)
    took = time.monotonic() - started
    show_published(published, log)
    from sweeps.run.estimate import record

    print(record(sweep_id, estimated.cost, took))


def show_published(published, log: Path | None) -> None:
    print(published.markdown)
    paths = published.paths
    print(
        f"ovat: wrote {shown(paths['markdown'])}, {shown(paths['parquet'])} and the methods "
        f"paragraph {shown(paths['methods'])}"
    )
    if log:
        print(f"ovat: library logs in {shown(log)}")
    from sweeps.publish import leaderboard

    hint = "" if leaderboard.served() else " (make ui serves it)"
    print(f"ovat: leaderboard: {published.leaderboard}{hint}")
    print(f"ovat: trials: {published.trials}")
    if published.model:
        print(f"ovat: best model: mlflow.pytorch.load_model({published.model!r})")


def resume(ablation: ablations.Ablation, args: argparse.Namespace) -> None:
    """RESUME=1: the newest unfinished sweep of this ablation; RESUME=<sweep id>: that one.
    The sweep keeps the plan it started with (its plan.json): an option given again must equal
    what the sweep started with, and one that would change it is refused, naming both values."""
    preflight()
    from sweeps.run.tuner import load_plan, resume_sweep, unfinished_sweep

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
    started = "auto" if plan.rule else plan.seeds
    if args.seeds and (
        seeding.adaptive(args) != bool(plan.rule)
        or (not plan.rule and int_option("SEEDS", args.seeds, 1, 1) != plan.seeds)
    ):
        refuse("SEEDS", started, args.seeds)
    if plan.rule and seeding.adaptive(args):  # MIN_SEEDS=, MAX_SEEDS=, BUDGET= as started
        given = seeding.seed_rule(args)
        for option in ("min_seeds", "max_seeds", "budget"):
            now, then = getattr(given, option), getattr(plan.rule, option)
            if getattr(args, option) and now != then:
                refuse(option.upper(), then, now)
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
    from sweeps.run.probe import probe_ablation

    seed = None if first_seed < 0 else first_seed
    print(probe_ablation(ablation, base, repeats, seed, verbose=args.verbose))


def sweep_options(command: argparse.ArgumentParser) -> None:
    add_plan_options(command)
    command.add_argument("--repeats", help="reruns per group of a probe ablation (placement)")
    command.add_argument(
        "--resume",
        help="1: finish the newest unfinished sweep of this ablation; or a sweep id",
    )
    command.add_argument("--verbose", type=int, default=0, help="Ray Tune's own verbosity (0-3)")


COMMANDS = (
    Command("sweep", "run one ablation as a Ray Tune sweep", sweep_options, cmd_sweep),
    Command(
        "plan", "print the trials a sweep would run; start nothing", add_plan_options, cmd_plan
    ),
)
