"""SEEDS=auto and BUDGET=: the seed rule of a sweep, parsed from the command line once."""

import argparse
import dataclasses

from sweeps.cli.common import int_option
from sweeps.define.cost import SweepCost, parse_budget
from sweeps.define.plan import SweepPlan
from sweeps.judge.racing import Rule
from trainers.config import ConfigError

AUTO = "auto"


def adaptive(args: argparse.Namespace) -> bool:
    return (args.seeds or "").strip().lower() == AUTO


def budget(text: str | None) -> int:
    """BUDGET= as trials; 0 when not given or given in device-hours (`within_hours` applies
    those once the plan's cost is estimated)."""
    return parse_budget(text).trials


def within_hours(args: argparse.Namespace, plan: SweepPlan, estimated: SweepCost) -> SweepPlan:
    """BUDGET=<n>h: a fixed plan must fit it, and a race may run the trials it pays for."""
    hours = parse_budget(args.budget).hours
    if not hours:
        return plan
    if plan.rule is None:
        if estimated.device_hours > hours:
            raise ConfigError(
                f"the plan needs about {estimated.device_hours:.2f} {estimated.unit}-hours but "
                f"BUDGET={args.budget}: lower SEEDS=, EPOCHS= or data.limit, or let the seeds "
                "stop where values are decided (SEEDS=auto)"
            )
        return plan
    each = estimated.device_hours / len(estimated.trials)
    trials = min(int(hours / each) if each > 0 else len(plan.trials), len(plan.trials))
    if trials < plan.rule.least_trials(len(plan.values)):
        said = f"{args.budget} ({trials} trials at about {each:.4f} {estimated.unit}-hours each)"
        refuse_first_round(said, plan.rule, len(plan.values))
    return dataclasses.replace(plan, rule=dataclasses.replace(plan.rule, budget=trials))


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


def refuse_first_round(budget_said: str, rule: Rule, values: int) -> None:
    raise ConfigError(
        f"BUDGET={budget_said} cannot pay the first round: {values} values x "
        f"MIN_SEEDS={rule.min_seeds} = {rule.least_trials(values)} trials; raise BUDGET or "
        "lower MIN_SEEDS"
    )


def check_budget(args: argparse.Namespace, rule: Rule | None, values: int, trials: int) -> None:
    """BUDGET= must pay for a race's first round, or for every trial of a fixed plan."""
    if rule and rule.budget and rule.budget < rule.least_trials(values):
        refuse_first_round(str(rule.budget), rule, values)
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
