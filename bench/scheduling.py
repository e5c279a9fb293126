"""Load: one sweep of many tiny trials, to measure what scheduling costs per trial.

From the sweep's MLflow runs alone (their start and end are set by the driver when Tune starts
and completes each trial, and each trial reports `startup_s`, its start-up before the first
training step): how close the makespan comes to perfect packing, how much idle slot time Tune
leaves between trials, and each trial's fixed start-up cost.
"""

import statistics
from dataclasses import dataclass, field

from bench.rows import Row
from sweeps.define import ablation as ablations
from trainers import tracking

NODE_TAG = "placement.node_id"  # trainers.placement's tag of the node a trial trained on
TINY = {"train.epochs": 1, "data.limit": 32, "train.batch_size": 16, "train.log_every": 0}


@dataclass(frozen=True)
class TrialTimes:
    start: float  # unix seconds: Tune started the trial
    end: float  # Tune completed it
    startup_s: float  # trial start to its first training step, as the trial measured it
    parts: dict = field(default_factory=dict)  # startup.workers_s, startup.data_s, ...
    last_result: float = 0.0  # unix seconds the driver got the trial's last result
    first_step_at: float = 0.0  # unix seconds of the first training step
    node: str = ""  # the Ray node id it trained on

    @property
    def fixed_s(self) -> float:
        """Tune's start of the trial to its first training step (the trial actor's launch
        included); the trial's own `startup_s` where the first step was not stamped."""
        return self.first_step_at - self.start if self.first_step_at else self.startup_s

    @property
    def duration(self) -> float:
        return self.end - self.start


def trial_times(sweep_id: str) -> list[TrialTimes]:
    runs = tracking.sweep_runs(sweep_id)
    client = tracking.client()

    def last_result(run) -> float:
        history = client.get_metric_history(run.info.run_id, "test_loss")
        return max((m.timestamp for m in history), default=run.info.end_time) / 1000

    return [
        TrialTimes(
            r.info.start_time / 1000,
            r.info.end_time / 1000,
            r.data.metrics.get("startup_s", 0.0),
            {
                k: v
                for k, v in r.data.metrics.items()
                if k.startswith("startup.") and k.endswith("_s")
            },
            last_result(r),
            r.data.metrics.get("startup.first_step_at", 0.0),
            r.data.tags.get(NODE_TAG, ""),
        )
        for r in runs
        if r.info.end_time
    ]


def span_and_busy(times: list[TrialTimes]) -> tuple[float, float]:
    """The makespan (first start to last end) and the slot-seconds the trials held in all."""
    return max(t.end for t in times) - min(t.start for t in times), sum(t.duration for t in times)


def scheduling_rows(times: list[TrialTimes], concurrency: int) -> list[Row]:
    """Packing against the ideal (sum of durations / concurrency: Tune's own scalability
    target is 20% over it) and the idle slot time per trial against a trial's length; the
    details profile the overheads (start-up parts, teardown after the last result)."""
    n = len(times)
    makespan, busy = span_and_busy(times)
    ideal = busy / concurrency
    gap = max(0.0, makespan * concurrency - busy) / n  # slot-seconds no trial held, per trial
    mean_duration = busy / n
    common = {"trials": n, "concurrency": concurrency, "makespan_s": makespan}
    return [
        Row(
            "packing: makespan / ideal",
            makespan / ideal,
            1.2,
            False,
            "sum of trial durations / concurrency",
            common | {"ideal_s": ideal, "mean_trial_s": mean_duration},
        ),
        Row(
            "scheduling gap per trial / trial duration",
            gap / mean_duration,
            0.05,
            False,
            "mean trial duration (Tune start to complete)",
            {
                "gap_s": gap,
                "teardown_s": statistics.fmean(t.end - (t.last_result or t.end) for t in times),
                "mean_trial_s": mean_duration,
            },
        ),
    ]


def fixed_cost_row(times: list[TrialTimes], default_train_s: float) -> Row:
    """Seconds from Tune starting a trial to its first training step, as a share of a default
    trial: that cost plus the default config's training time (its epochs over its train split
    at the bare loop's rate, measured in the same run; evaluation left out)."""
    fixed = statistics.fmean(t.fixed_s for t in times)
    parts = {  # the profile: where the seconds go
        name: statistics.fmean(t.parts.get(name, 0.0) for t in times)
        for name in sorted({name for t in times for name in t.parts})
    }
    launch = fixed - statistics.fmean(t.startup_s for t in times)
    return Row(
        "fixed cost share of a default trial",
        fixed / (fixed + default_train_s),
        0.25,
        False,
        "a default trial: this cost + the default config's training time",
        {"fixed_s": fixed, "startup.launch_s": launch, **parts, "default_train_s": default_train_s},
    )


def load_ablation(trials: int) -> ablations.Ablation:
    """One value, `trials` seeds: every trial is the same tiny job."""
    raw = {"vary": {"model.bottleneck": ["identity"]}, "baseline": "identity", "seeds": trials}
    return ablations.Ablation.from_dict("load", raw)


def default_train_seconds() -> float:
    """The default config's training time here: its epochs over its whole train split at the
    steady rate of the bare loop (default model, batch and threads, on 512 of the images)."""
    from bench.training import bare_images_per_s, steady
    from trainers.config import ExperimentConfig
    from trainers.evaluation import load_splits

    cfg = ExperimentConfig()
    images = len(load_splits(cfg, ("train",))["train"])
    rate = steady(bare_images_per_s({"train.epochs": 3, "data.limit": 512}))
    return cfg.train.epochs * images / rate


def run_load(trials: int, cpus_per_worker: float) -> tuple[list[Row], int]:
    """Run the sweep and measure it; returns the rows and how many trials the table counted."""
    import ray

    from sweeps.run.cluster import concurrency, ensure_ray
    from sweeps.run.tuner import run_plan

    overrides = TINY | {"resources.cpus_per_worker": cpus_per_worker}
    plan = ablations.plan(load_ablation(trials), overrides)
    ensure_ray()
    slots = concurrency(plan.trials)
    published = run_plan(plan)
    counted = sum(row.n for row in published.ranking)
    times = trial_times(published.sweep_id)
    ray.shutdown()
    rows = scheduling_rows(times, slots) + [fixed_cost_row(times, default_train_seconds())]
    return rows, counted
