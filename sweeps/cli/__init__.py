"""`ovat`: the command line behind the Makefile. User errors are one line and exit code 2.

One module per group of commands, each with a COMMANDS table: a new command is one entry
there (and a new group one line in GROUPS).
"""

import argparse
import sys

from sweeps.cli import datasets, followups, results, sweep
from sweeps.cli.common import USER_ERRORS
from sweeps.errors import SweepInterrupted

GROUPS = (sweep, results, followups, datasets)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="ovat", description=__doc__.split("\n")[0])
    top.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = top.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        for command in group.COMMANDS:
            options = sub.add_parser(command.name, help=command.help)
            command.options(options)
            options.set_defaults(func=command.run)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.func(args)
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
