"""SEEDS=auto and BUDGET=: the seed rule of a sweep, parsed from the command line once."""

import argparse
import re

from sweeps.cli.common import int_option
from sweeps.judge.racing import Rule
from trainers.config import ConfigError

AUTO = "auto"
BUDGET_FORMS = "a number of trials (BUDGET=60)"


def adaptive(args: argparse.Namespace) -> bool:
    return (args.seeds or "").strip().lower() == AUTO


def budget(text: str | None) -> int:
    """BUDGET= as trials; 0 when not given. Device-hours (BUDGET=2h) need the plan's cost
    estimate, which ovat does not make yet: refused by name rather than guessed."""
    if text in (None, ""):
        return 0
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?\s*(h|hours?)", text):
        raise ConfigError(
            f"BUDGET={text}: a budget in device-hours needs a cost estimate per trial, which "
            f"`make plan` does not make yet; give {BUDGET_FORMS}"
        )
    if not re.fullmatch(r"\d+", text) or int(text) < 1:
        raise ConfigError(f"BUDGET={text!r} is not a budget; give {BUDGET_FORMS}, at least 1")
    return int(text)


def seed_rule(args: argparse.Namespace) -> Rule | None:
    """The race of SEEDS=auto (MIN_SEEDS, MAX_SEEDS, BUDGET), or None for a fixed count."""
    if not adaptive(args):
        for option, given in (("MIN_SEEDS", args.min_seeds), ("MAX_SEEDS", args.max_seeds)):
            if given:
                raise ConfigError(f"{option}= applies to SEEDS=auto only; add SEEDS=auto")
        return None
    least = int_option("MIN_SEEDS", args.min_seeds, Rule.min_seeds, minimum=2)
    most = int_option("MAX_SEEDS", args.max_seeds, max(Rule.max_seeds, least), minimum=least)
    return Rule(least, most, budget(args.budget))


def check_budget(args: argparse.Namespace, rule: Rule | None, values: int, trials: int) -> None:
    """BUDGET= must pay for a race's first round, or for every trial of a fixed plan."""
    if rule and rule.budget and rule.budget < rule.least_trials(values):
        raise ConfigError(
            f"BUDGET={rule.budget} cannot pay the first round: {values} values x "
            f"MIN_SEEDS={rule.min_seeds} = {rule.least_trials(values)} trials; raise BUDGET or "
            "lower MIN_SEEDS"
        )
    limit = budget(args.budget)
    if not rule and limit and trials > limit:
        raise ConfigError(
            f"the plan needs {trials} trials but BUDGET={limit}: lower SEEDS=, or let the seeds "
            "stop where values are decided (SEEDS=auto)"
        )


def describe(rule: Rule, values: int) -> str:
    """The rule as `make plan` prints it."""
    pairs = values * (values - 1) // 2
    return (
        f"ovat: seeds: auto: every value starts with {rule.min_seeds} seeds and gets one more "
        f"per round until it is separated from a better value, or reaches {rule.max_seeds} "
        f"(paired or Welch t-tests in a group-sequential design, Holm over {pairs} pairs, "
        f"family-wise "
        f"{rule.alpha:.0%}; docs/ranking.md)"
        + (f"; budget {rule.budget} trials" if rule.budget else "")
    )
