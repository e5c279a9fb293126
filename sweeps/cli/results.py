"""`ovat rank`, `ovat diff`, `ovat leaderboard`: a finished sweep read back from MLflow."""

import argparse
import os

from sweeps.cli.common import Command, shown
from sweeps.publish.exports import FORMATS, export
from trainers import keys, tracking


def cmd_rank(args: argparse.Namespace) -> None:
    from sweeps.publish.summary import rebuild

    published = rebuild(args.sweep, args.ablation)
    print(published.markdown)
    print(f"ovat: methods paragraph: {shown(published.paths['methods'])}")
    if args.format != "md":
        print(f"ovat: wrote {shown(export(published, args.format))}")
    print(f"ovat: leaderboard: {published.leaderboard}")
    print(f"ovat: trials: {published.trials}")


def cmd_diff(args: argparse.Namespace) -> None:
    from sweeps.publish.diff import diff

    text, path = diff(args.a, args.b, args.ablation)
    print(text)
    print(f"ovat: wrote {shown(path)} and attached it to {args.b}'s sweep run")


def cmd_leaderboard(args: argparse.Namespace) -> None:
    """`make ui` starts with this line: the newest sweep's leaderboard, or SWEEP's."""
    from sweeps.publish import leaderboard
    from sweeps.publish.records import sweep_run
    from sweeps.publish.summary import is_text

    if args.port:
        os.environ["OVAT_UI_PORT"] = args.port
    run = sweep_run(args.sweep, args.ablation)
    experiment = tracking.experiment_name(run.info.experiment_id)
    sweep_id = run.data.tags[keys.SWEEP_ID]
    if not tracking.sweep_runs(sweep_id, keys.ROLE_VALUE):  # ranked before value runs existed
        print(
            f"ovat: sweep {sweep_id} has no value rows yet: `make rank SWEEP={sweep_id}` writes them"
        )
    view = leaderboard.values_view(sweep_id, in_bytes=is_text(run))
    print(f"ovat: leaderboard: {leaderboard.publish(view, experiment)}")
    print(f"ovat: trials: {leaderboard.publish(leaderboard.trials_view(sweep_id), experiment)}")


def scope_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--ablation", default="", help="`latest` and `previous` are this ablation's sweeps"
    )


def rank_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("sweep", nargs="?", default="latest", help="sweep id or 'latest'")
    command.add_argument(
        "--format",
        default="md",
        choices=list(FORMATS),
        help="also write the table as ranking.csv, ranking.tex (booktabs) or a self-contained "
        "ranking.html under results/<sweep id>/ (md: ranking.md only, always written)",
    )
    scope_option(command)


def diff_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("a", help="sweep id, 'latest' or 'previous'")
    command.add_argument("b", help="sweep id, 'latest' or 'previous'")
    scope_option(command)


def leaderboard_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("sweep", nargs="?", default="latest", help="sweep id or 'latest'")
    command.add_argument("--port", help="the port `make ui` serves on (default 5000)")
    scope_option(command)


COMMANDS = (
    Command("rank", "rebuild a sweep's ranking table from MLflow", rank_options, cmd_rank),
    Command("diff", "what changed between two sweeps, value by value", diff_options, cmd_diff),
    Command(
        "leaderboard",
        "print the MLflow UI link of a sweep's ranking",
        leaderboard_options,
        cmd_leaderboard,
    ),
)
