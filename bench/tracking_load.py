"""Logging at cluster scale: synthetic trial results fed through the sweep's real Tune callback
and outbox (the driver's only writer to MLflow) into a real tracking store, as thousands of
concurrent trials would report them.

Only the trials are simulated: each stands for a running trial that reports one result (an
epoch's metrics and its per-step losses at `train.log_every`, the dict the trial loop reports)
every `report_every_s`. Against an `mlflow server` the run pauses the server (SIGSTOP) for a
while, as an overloaded or restarting server would, and measures how long the driver's queue
takes to catch up. Every result is then counted in the store's database: nothing may be lost.
"""

import dataclasses
import math
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ray.tune.result import AUTO_RESULT_KEYS

from bench.servers import processes, rss_mib, tree_cpu_s
from sweeps.define import ablation as ablations
from sweeps.define.plan import SweepPlan, new_sweep_id
from sweeps.run.mlflow_callback import MlflowTrialLogger
from sweeps.run.outbox import sweep_outbox
from trainers import keys, tracking

ABLATION = "bottleneck-gpu"  # 4 trials per GPU: 4,000 trials on 1,000 GPUs
# What the trial loop reports (trainers/loop.py): every epoch, the first epoch only, and the
# last epoch only (not sent here: the simulated trials run longer than the measurement).
EPOCH_METRICS = (
    "achieved_tflops", "report_s", "resumes", "train_images_per_s", keys.TRAIN_LOSS, "train_s",
    keys.VAL_LOSS, "val_code_usage", "val_perplexity",
)  # fmt: skip
FIRST_METRICS = (
    "flops_per_image", "startup.data_s", "startup.first_step_at", "startup.model_s",
    "startup.worker_imports_s", "startup.worker_spawn_s", "startup.workers_s", "startup_s",
)  # fmt: skip
FINAL_METRICS = (
    "audit.frozen_changed", "audit.untrained_params", "params_bottleneck", "params_frozen",
    "params_total", "params_trainable", "test_code_usage", keys.TEST_LOSS, "test_perplexity",
)  # fmt: skip
PLACEMENT_TAGS = (
    "host", "node_ip", "node_id", "pid", "device", "torch", "deterministic", "cpu_model",
    "cpu_capability", "onednn_isa", "mkl", "onednn", "matmul_precision", "hardware_kind",
)  # fmt: skip


@dataclasses.dataclass
class SimulatedTrial:
    """What the callback reads of a Tune trial."""

    trial_id: str
    config: dict
    last_result: dict | None = None
    status: str = "RUNNING"


def result(epoch: int, points: int, log_every: int, first: bool, draw: random.Random) -> dict:
    """One epoch's result as a trial reports it to Tune: `points` per-step losses, every
    `log_every` steps of the epoch."""
    out = {name: draw.random() for name in EPOCH_METRICS}
    out |= {name: 0 for name in AUTO_RESULT_KEYS if name != "config"}
    out |= {keys.EPOCH: epoch, keys.REPORTED_AT: int(time.time() * 1000)}
    steps = points * log_every
    losses = [[(epoch - 1) * steps + i * log_every, draw.random()] for i in range(1, points + 1)]
    out[keys.STEP_METRICS] = {keys.STEP_LOSS: losses}
    if first:
        out |= {name: draw.random() for name in FIRST_METRICS}
        out |= {f"{keys.PLACEMENT}{name}": f"simulated-{name}" for name in PLACEMENT_TAGS}
    return out


def say(line: str) -> None:
    print(f"bench.tracking: {line}", flush=True)


def simulated_plan(trials: int) -> SweepPlan:
    """The GPU ablation with as many seeds as make `trials` trials."""
    ablation = ablations.load(ABLATION)
    values = len(ablations.value_configs(ablation, ablations.base_config(ablation, None, "")))
    plan = ablations.plan(ablation, seeds=math.ceil(trials / values))
    return dataclasses.replace(plan, trials=plan.trials[:trials], experiment="ovat-load")


class Feeder(threading.Thread):
    """Reports results through the callback at `rate` per second (round robin over the trials)
    until stopped; counts them and times the callback's share of this thread."""

    def __init__(self, callback: MlflowTrialLogger, trials: list, points: int, log_every: int):
        super().__init__(daemon=True, name="ovat-bench-feeder")
        self.callback, self.trials, self.points, self.log_every = (
            callback,
            trials,
            points,
            log_every,
        )
        self.rate, self.sent, self.callback_cpu_s = 0.0, 0, 0.0
        self.stopping = threading.Event()
        self.draw = random.Random(0)

    def run(self) -> None:
        started, due = time.monotonic(), 0
        while not self.stopping.is_set():
            if self.rate <= 0:
                time.sleep(0.05)
                started, due = time.monotonic(), self.sent
                continue
            wait = started + (self.sent - due) / self.rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self.report_next()

    def report_next(self) -> None:
        """The next trial's next epoch, through the callback as Tune hands it over."""
        trial = self.trials[self.sent % len(self.trials)]
        epoch = self.sent // len(self.trials) + 1
        report = result(epoch, self.points, self.log_every, epoch == 1, self.draw)
        began = time.thread_time()
        self.callback.on_trial_result(0, self.trials, trial, report)
        self.callback_cpu_s += time.thread_time() - began
        self.sent += 1

    def set_rate(self, rate: float) -> None:
        self.rate = rate


@dataclasses.dataclass
class Sample:
    at: float  # monotonic seconds
    waiting: int  # results queued, not yet delivered
    lag_s: float  # age of the oldest queued result
    sent: int


def sample(feeder: Feeder, outbox) -> Sample:
    """The outbox's backlog of results now (one "result" write each)."""
    now_ms = time.time() * 1000
    with outbox.lock:
        waiting = [e for e in outbox.pending if e["op"] == "result"]
    lag = (now_ms - waiting[0]["timestamp_ms"]) / 1000 if waiting else 0.0
    return Sample(time.monotonic(), len(waiting), lag, feeder.sent)


def watch(feeder: Feeder, outbox, seconds: float, until: Callable[[Sample], bool] | None = None):
    """Samples once a second for `seconds` (or until `until` says so)."""
    samples, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        samples.append(sample(feeder, outbox))
        if until is not None and until(samples[-1]):
            break
        time.sleep(1.0)
    return samples


def delivered(first: Sample, last: Sample) -> float:
    """Results delivered per second between two samples."""
    done = (last.sent - last.waiting) - (first.sent - first.waiting)
    return done / max(last.at - first.at, 1e-9)


def count_rows(backend_uri: str, sweep_id: str) -> dict[str, int]:
    """Metric rows of the sweep's trial runs, by name, read from the store's database."""
    import sqlalchemy

    query = sqlalchemy.text(
        "SELECT m.key, COUNT(*) FROM metrics m JOIN tags t ON t.run_uuid = m.run_uuid "
        "WHERE t.key = :tag AND t.value = :sweep GROUP BY m.key"
    )
    engine = sqlalchemy.create_engine(backend_uri)
    try:
        with engine.connect() as connection:
            return dict(connection.execute(query, {"tag": keys.SWEEP_ID, "sweep": sweep_id}).all())
    finally:
        engine.dispose()


def cpu_by_part(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far: this process (the driver, every thread) and each process tree
    of `pids` (the server and its workers, the database and its backends)."""
    table = processes()
    return {"driver": sum(os.times()[:2])} | {n: tree_cpu_s(p, table) for n, p in pids.items()}


@dataclasses.dataclass
class LoadRun:
    """One measured run: open every trial's run; time a burst of results (the ceiling); report
    at a steady rate (the rate `trials` need, or a third of the ceiling where that is lower);
    optionally pause the server meanwhile; then drain and count."""

    folder: Path
    trials: int  # trial runs opened, the results spread over them
    rate: float  # results per second the simulated cluster reports
    points: int
    steady_s: float
    burst_s: float = 10.0  # the burst: this many seconds of results at twice `rate`
    pause: Callable[[], None] | None = None
    resume: Callable[[], None] | None = None
    pause_s: float = 60.0
    catch_up_limit_s: float = 600.0
    pids: dict[str, int] = dataclasses.field(default_factory=dict)  # component -> process

    def run(self) -> dict:
        plan = simulated_plan(self.trials)
        sweep_id = new_sweep_id("load")
        parent = tracking.start_run(plan.experiment, sweep_id, {keys.SWEEP_ID: sweep_id}, {})
        callback = MlflowTrialLogger(plan, sweep_id, parent, self.folder / sweep_id)
        outbox = sweep_outbox(self.folder / sweep_id)
        simulated = [
            SimulatedTrial(f"t{i:05d}", {"trial": t.key}) for i, t in enumerate(plan.trials)
        ]
        figures = {
            "trials": self.trials,
            "points_per_result": self.points,
            "needed_per_s": self.rate,
        }
        began = time.monotonic()
        for trial in simulated:  # Tune starts them all at once on a cluster this size
            callback.on_trial_start(0, simulated, trial)
        outbox.drain(wait_s=3600)
        figures["open_s_per_trial"] = (time.monotonic() - began) / self.trials
        say(f"opened {self.trials} trial runs in {time.monotonic() - began:.0f} s")
        feeder = Feeder(callback, simulated, self.points, plan.base.train.log_every)
        figures |= self.burst(feeder, outbox)
        feeder.start()
        feeder.set_rate(min(self.rate, figures["ceiling_per_s"] / 3))
        figures |= self.steady(feeder, outbox)
        if self.pause is not None:
            figures |= self.paused(feeder, outbox)
        feeder.stopping.set()
        feeder.join()
        outbox.drain(wait_s=3600)
        outbox.close()
        return figures | {"sent": feeder.sent, "sweep_id": sweep_id}

    def burst(self, feeder: Feeder, outbox) -> dict:
        """Twice the needed rate for burst_s, queued at once; the time to deliver it is the
        ceiling (at least twice the rate when the queue empties as fast as it fills)."""
        count = max(1, round(2 * self.rate * self.burst_s))
        began = time.monotonic()
        for _ in range(count):
            feeder.report_next()
        outbox.drain(wait_s=3600)
        took = time.monotonic() - began
        ceiling = count / max(took, self.burst_s)
        say(f"{count} results in {took:.0f} s: {ceiling:.1f} results/s (needed {self.rate:.1f})")
        return {"ceiling_per_s": ceiling, "burst_results": count, "burst_s": took}

    def steady(self, feeder: Feeder, outbox) -> dict:
        watch(feeder, outbox, min(10.0, self.steady_s / 4))  # the queue settles
        cpu_before = cpu_by_part(self.pids)
        callback_before, rss_before = feeder.callback_cpu_s, rss_mib()
        samples = watch(feeder, outbox, self.steady_s)
        first, last = samples[0], samples[-1]
        wall = last.at - first.at
        results = (last.sent - last.waiting) - (first.sent - first.waiting)
        cpu = {k: v - cpu_before[k] for k, v in cpu_by_part(self.pids).items()}
        lags = sorted(s.lag_s for s in samples)
        return {
            "offered_per_s": feeder.rate,
            "delivered_per_s": delivered(first, last),
            "lag_median_s": lags[len(lags) // 2],
            "lag_max_s": lags[-1],
            "callback_core_share": (feeder.callback_cpu_s - callback_before) / wall,
            "rss_start_mib": rss_before,
            "rss_end_mib": rss_mib(),
            "results_in_steady": results,
            **{f"{k}_cpu_ms_per_result": 1000 * v / max(results, 1) for k, v in cpu.items()},
        }

    def paused(self, feeder: Feeder, outbox) -> dict:
        """Pause the server for pause_s while results keep coming; resume; time the catch-up."""
        self.pause()
        say(f"server paused for {self.pause_s:.0f} s")
        during = watch(feeder, outbox, self.pause_s)
        self.resume()
        resumed = sample(feeder, outbox)
        after = watch(feeder, outbox, self.catch_up_limit_s, until=lambda s: s.lag_s < 5.0)
        caught_up = after[-1].lag_s < 5.0
        catch_up_s = after[-1].at - resumed.at
        say(f"caught up {catch_up_s:.0f} s after the resume" if caught_up else "never caught up")
        return {
            "pause_s": self.pause_s,
            "backlog_at_resume": resumed.waiting,
            "lag_max_paused_s": max(s.lag_s for s in during + after),
            "catch_up_s": catch_up_s if caught_up else math.inf,
        }
