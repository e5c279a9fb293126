"""Ranking at scale: sweeps of many trial runs written straight into a store (no training), then
what a user runs on them, timed: `make rank`, `make rank SWEEP=a,b`, `make diff` and the
leaderboard's views.

The rows are ratios measured in one run: the time at the full size against the time at a tenth
of it (linear growth is 10; more says something grows faster than the trials), and pooling or
diffing two sweeps against ranking one. The seconds themselves are in each row's detail.
"""

import random
import time
from collections.abc import Callable

from mlflow.entities import Metric, RunTag

from bench.rows import Row
from trainers import keys, tracking

EXPERIMENT = "ovat-scale"
VALUES = 10  # values per sweep; seeds = trials / VALUES


def make_sweep(sweep_id: str, trials: int, first_seed: int = 0, values: int = VALUES) -> None:
    """A finished sweep as the driver logs one: its run, then one finished trial run per
    (value, seed) with the metrics the ranking reads, seeds from `first_seed` (a rerun to pool
    takes new seeds, FIRST_SEED=). Value i's losses centre on 0.01 + i/1000."""
    client = tracking.client()
    tags = {keys.SWEEP_ID: sweep_id, keys.ABLATION: "scale", keys.BASELINE: "v0"}
    tags |= {keys.VARY: "model.bottleneck"}
    parent = tracking.start_run(EXPERIMENT, sweep_id, {**tags, keys.ROLE: keys.ROLE_SWEEP}, {})
    experiment = tracking.experiment_id(EXPERIMENT)
    draw = random.Random(sweep_id)
    for n in range(trials):
        value, seed = f"v{n % values}", first_seed + n // values
        trial_tags = {**tags, keys.ROLE: keys.ROLE_TRIAL, keys.VALUE: value, keys.SEED: seed}
        trial_tags["mlflow.parentRunId"] = parent
        run = client.create_run(experiment, run_name=f"{value}-scale-s{seed}")
        loss = 0.01 + (n % values) / 1000 + draw.gauss(0, 0.002)
        metrics = {keys.TEST_LOSS: loss, keys.VAL_LOSS: loss + 0.0005, keys.PARAMS_TOTAL: 10}
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, 0, 2) for k, v in metrics.items()],
            tags=[RunTag(k, str(v)) for k, v in trial_tags.items()],
        )
        client.set_terminated(run.info.run_id)
    tracking.end_run(parent)


def leaderboard_rows(small, large, trials: int) -> list[Row]:
    """The two published sweeps' views (the ranking: 10 value rows; the seeds: the first rows
    of `trials` or a tenth) opened in Chromium, timed to their rows, against the small sweep's:
    the UI asks for one page, so the size of the sweep should not show (10 would be linear)."""
    from bench.browser import chromium, seconds_to_rows

    seconds = {}
    with chromium() as browser:
        seconds_to_rows(browser, small.leaderboard, VALUES)  # the server's first page: warm
        for size, published, count in (("small", small, trials // 10), ("large", large, trials)):
            seconds[f"values_{size}_s"] = seconds_to_rows(browser, published.leaderboard, VALUES)
            rows = min(FIRST_ROWS, count)
            seconds[f"trials_{size}_s"] = seconds_to_rows(browser, published.trials, rows)
    names = (("values", "the ranking (a row per value)"), ("trials", "the seeds (a row per trial)"))
    return [
        Row(
            f"leaderboard in Chromium, {what}, {trials:,} trials against {trials // 10:,}",
            seconds[f"{view}_large_s"] / seconds[f"{view}_small_s"],
            2.0,
            False,
            "the same view of the sweep of a tenth of the trials (10: linear)",
            {k: v for k, v in seconds.items() if k.startswith(view)},
        )
        for view, what in names
    ]


FIRST_ROWS = 20  # trial rows the seeds view shows before it counts as open (800 px tall)


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def scale_rows(trials: int, browser: bool = False) -> list[Row]:
    """Rank a sweep of trials / 10 and one of `trials`; pool two of `trials`; diff them; with
    `browser`, open both sweeps' leaderboard views in Chromium (`mlflow server` on the store)."""
    from sweeps.publish.diff import diff
    from sweeps.publish.summary import rebuild

    small, large, other = (f"scale-{trials // 10}", f"scale-{trials}", f"scale-{trials}-b")
    made = {}
    sizes = ((small, trials // 10, 0), (large, trials, 0), (other, trials, trials // VALUES))
    for sweep_id, count, first_seed in sizes:
        made[sweep_id] = timed(lambda s=sweep_id, c=count, f=first_seed: make_sweep(s, c, f))
        print(f"bench.scale: wrote {count} trial runs of {sweep_id} in {made[sweep_id]:.0f} s")
    published = {}
    rank_small = timed(lambda: published.setdefault(small, rebuild(small)))
    rank_large = timed(lambda: published.setdefault(large, rebuild(large)))
    rerank = timed(lambda: rebuild(large))  # the value runs exist now: found, not created
    pooled = timed(lambda: rebuild(f"{large},{other}"))
    diffed = timed(lambda: diff(large, other))
    value_runs = len(tracking.sweep_runs(large, keys.ROLE_VALUE))
    if value_runs != VALUES:
        raise SystemExit(f"bench.scale: {value_runs} value runs of {large}, expected {VALUES}")
    seconds = {"rank_small_s": rank_small, "rank_s": rank_large, "rerank_s": rerank}
    views = leaderboard_rows(published[small], published[large], trials) if browser else []
    return [
        Row(
            f"make rank, {trials:,} trials against {trials // 10:,}",
            rank_large / rank_small,
            12.0,
            False,
            "ranking a tenth of the trials (10: linear)",
            {**seconds, "trials": trials, "write_s_per_trial": made[large] / trials},
        ),
        Row(
            f"make rank SWEEP=a,b, 2 x {trials:,} trials",
            pooled / rank_large,
            2.5,
            False,
            "ranking one of the sweeps (2: linear)",
            {"pooled_s": pooled, "rank_s": rank_large},
        ),
        Row(  # both read the same two sweeps' runs, most of either's time (ranking one: 2)
            f"make diff, 2 x {trials:,} trials",
            diffed / pooled,
            1.0,
            False,
            "pooling the same two sweeps in `make rank SWEEP=a,b`",
            {"diff_s": diffed, "pooled_s": pooled, "diff_over_rank": diffed / rank_large},
        ),
    ] + views
