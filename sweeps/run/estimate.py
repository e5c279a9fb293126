"""A plan's cost and resolution, as `make plan` and `make sweep` print them before anything
runs: rates from earlier trials in the store, else a calibration here, else FLOPs; the
concurrency of the cluster the sweep would run on; the seeds' detectable gap from earlier
sweeps' spread."""

import os
from dataclasses import dataclass

from data.registry import images_to_load, is_prepared, kind, prepare
from sweeps.define.cost import Rate, SweepCost, TrialCost, duration, trial_seconds
from sweeps.define.plan import SweepPlan
from sweeps.errors import ResourceError
from sweeps.judge.power import ALPHA, POWER, Spread, detectable_gap, seeds_for_gap
from sweeps.publish.history import history_rates, seed_spread, speed_key
from sweeps.run import cluster
from sweeps.run.calibrate import STARTUP_S, calibrated_rate
from trainers import keys, tracking
from trainers.paths import data_dir
from trainers.trial import trial_resources


@dataclass(frozen=True)
class Estimate:
    cost: SweepCost
    rates: dict[str, Rate]  # by trial key
    to_prepare: int  # source images still to decode before the first trial
    spread: Spread | None
    gap: float  # GAP= (0: none asked)
    refusal: str = ""  # why `make sweep` would refuse the plan on this cluster


def available_resources() -> dict[str, float]:
    """What the sweep's cluster offers: the Ray this process has joined, else the cluster at
    RAY_ADDRESS (joined as the sweep would join it), else this machine, which is what the
    sweep's own Ray would offer (no Ray is started to plan)."""
    import ray

    if ray.is_initialized():
        return ray.cluster_resources()
    if os.environ.get("RAY_ADDRESS"):
        cluster.ensure_ray()
        return ray.cluster_resources()
    import torch

    return {"CPU": float(os.cpu_count() or 1), "GPU": float(torch.cuda.device_count())}


def images(data) -> tuple[int, int]:
    """(train, val + test) images a trial on `data` loads (before preparing a layout, its
    listing is read: once per data variant of the plan); the bundled sample is prepared to
    count it."""
    if data.dataset == "sample" and not is_prepared(data, data_dir()):
        prepare(data, data_dir())  # a few MB, a second or two
    return images_to_load(data, data_dir(), ("train",)), images_to_load(
        data, data_dir(), ("val", "test")
    )


def estimate(plan: SweepPlan, gap: float = 0.0, available: dict | None = None) -> Estimate:
    first = plan.trials[0].config
    counts = {data: images(data) for data in {t.config.data for t in plan.trials}}
    train, scored = counts[first.data]
    share = scored / train if train else 0.0
    rates = history_rates(plan.trials, share)
    startup = next(iter(rates.values())).startup_s if rates else STARTUP_S
    measured: dict[tuple, Rate] = {}
    for trial in plan.trials:
        if trial.key not in rates:
            key = speed_key(trial.config.to_params())
            if key not in measured:
                measured[key] = calibrated_rate(trial.config, startup)
            rates[trial.key] = measured[key]
    costs = []
    for trial in plan.trials:
        train, scored = counts[trial.config.data]
        seconds = trial_seconds(rates[trial.key], trial.config.train.epochs, train, scored)
        need = trial_resources(trial.config.resources)
        gpus = trial.config.resources.workers * trial.config.resources.gpus_per_worker
        devices = gpus if trial.config.resources.use_gpu else need["CPU"]
        costs.append(TrialCost(trial.key, seconds, devices, rates[trial.key].source))
    on_gpu = first.resources.use_gpu
    resources = available_resources() if available is None else available
    refusal = ""
    try:
        at_once = cluster.concurrency(plan.trials, resources)
    except ResourceError as error:  # costed as one at a time on a cluster where it would fit
        at_once, refusal = 1, str(error)
    unprepared = (
        0 if is_prepared(first.data, data_dir()) else images_to_load(first.data, data_dir())
    )
    return Estimate(
        SweepCost(tuple(costs), at_once, "GPU" if on_gpu else "core"),
        rates,
        unprepared,
        seed_spread(plan.name),
        gap,
        refusal,
    )


# What preparing a data variant does to its source, by the data's kind.
TO_PREPARE = {"image": "source images to decode", "text": "text windows to cut from the files"}


def describe(estimate: Estimate, plan: SweepPlan) -> list[str]:
    """The cost and resolution lines of `make plan`."""
    cost = estimate.cost
    per_trial = [t.seconds for t in cost.trials]
    lines = [
        (
            f"ovat: cost: {duration(min(per_trial))} to {duration(max(per_trial))} a trial, "
            f"{cost.device_hours:.2f} {cost.unit}-hours, about {duration(cost.wall_s)} wall at "
            f"{cost.at_once} trials at once (rates from {cost.sources})"
        )
    ]
    details = sorted({f"{r.source}: {r.detail}" for r in estimate.rates.values() if r.detail})
    lines += [f"ovat:   {d}" for d in details]
    if estimate.to_prepare:
        data = plan.trials[0].config.data
        lines.append(
            f"ovat: first: {estimate.to_prepare:,} {TO_PREPARE[kind(data.dataset)]} and write "
            "as shards (make prepare; once per data variant)"
        )
    if estimate.refusal:
        lines.append(f"ovat: make sweep refuses this plan here: {estimate.refusal}")
    lines += resolution(estimate, plan)
    return lines


def resolution(estimate: Estimate, plan: SweepPlan) -> list[str]:
    comparisons = max(len(plan.values) - 1, 1)
    spread = estimate.spread
    test = f"{POWER:.0%} power, family-wise {ALPHA:.0%} over {comparisons} comparisons"
    if spread is None:
        measures = (
            "this sweep measures it"
            if plan.rule or plan.seeds > 1
            else "SEEDS=2 or more measure it"
        )
        return [
            (
                "ovat: resolution: no earlier sweep of this ablation ran a value on two seeds or "
                f"more, so the spread between seeds is unknown; {measures} (make plan then says "
                "what the seeds resolve)"
            )
        ]
    lines = []
    if plan.rule is None:
        smallest = detectable_gap(spread.sd, plan.seeds, comparisons)
        lines.append(
            f"ovat: resolution: {plan.seeds} seeds a value detect a gap in test loss of "
            f"{smallest:.4f} ({test}; seed spread {spread.sd:.4f} from {spread.source})"
        )
    if estimate.gap:
        needed = seeds_for_gap(spread.sd, estimate.gap, comparisons)
        say = f"{needed} seeds a value" if needed else "more than 1,000 seeds a value"
        lines.append(f"ovat: GAP={estimate.gap:g} needs {say} ({test})")
    return lines


def record(sweep_id: str, cost: SweepCost, took_s: float) -> str:
    """Predicted and actual cost on the sweep's run, so estimates can be checked; the line
    printed under the ranking."""
    [run] = tracking.sweep_runs(sweep_id, keys.ROLE_SWEEP)[-1:]
    tags = {
        keys.PREDICTED_WALL_S: round(cost.wall_s),
        keys.PREDICTED_DEVICE_HOURS: f"{cost.device_hours:.4f}",
        keys.WALL_S: round(took_s),
    }
    tracking.set_tags(run.info.run_id, tags)
    off = took_s / cost.wall_s - 1 if cost.wall_s else 0.0
    return (
        f"ovat: took {duration(took_s)}; predicted {duration(cost.wall_s)} ({off:+.0%} off), "
        f"{cost.device_hours:.2f} {cost.unit}-hours"
    )
