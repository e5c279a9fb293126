"""The seed's next steps on a logged run: `ovat eval`, `transplant`, `finetune` and `probe`."""

import argparse

from models.bottlenecks import BOTTLENECKS
from sweeps.cli.common import Command, absolute, int_option, preflight
from trainers.config import ConfigError


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
    from sweeps.run.probe import check_kinds, run_probe

    repeats = int_option("REPEATS", args.repeats, 3, minimum=2)
    check_kinds(args.kinds)
    preflight()
    print(run_probe(args.run, repeats, args.deterministic, args.verbose, args.kinds))


def eval_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("run", help="run id or run name")
    command.add_argument("--dataset", help="another prepared data variant (default: the run's)")
    command.add_argument("--root", help="that variant's source folder (data.root)")
    command.add_argument("--splits", default="val,test", help="comma-separated splits")


def transplant_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("run", help="run id or run name of the trained model")
    command.add_argument("--bottleneck", required=True, help="the untrained bottleneck to put in")
    command.add_argument("--seed", type=int, help="seed of the new bottleneck (default: the run's)")


def finetune_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("run", help="run id or run name")
    command.add_argument("--train", required=True, help="name patterns, e.g. 'bottleneck.norm.*'")
    command.add_argument("--steps", type=int, default=200, help="optimizer steps")
    command.add_argument("--shots", type=int, default=0, help="train on the first N images only")
    command.add_argument("--lr", type=float, help="learning rate (default: the run's)")


def probe_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("run", help="run id or run name of a trial")
    command.add_argument("--repeats", help="reruns per group (>= 2, default 3)")
    command.add_argument(
        "--deterministic",
        action="store_true",
        help="also rerun the same seed with deterministic algorithms",
    )
    command.add_argument(
        "--kinds",
        default="none",
        help="auto: rerun the same seed on every hardware kind reachable (node kinds, and the "
        "x86 instruction sets below a CPU's own)",
    )
    command.add_argument("--verbose", type=int, default=0, help="Ray Tune's own verbosity (0-3)")


COMMANDS = (
    Command("eval", "evaluate a run's checkpoint on val and test", eval_options, cmd_eval),
    Command(
        "transplant",
        "swap in a fresh, untrained bottleneck and evaluate",
        transplant_options,
        cmd_transplant,
    ),
    Command(
        "finetune",
        "fine-tune only the parameters matching TRAIN",
        finetune_options,
        cmd_finetune,
    ),
    Command(
        "probe",
        "rerun a trial: same seed n times, other seeds n times",
        probe_options,
        cmd_probe,
    ),
)
