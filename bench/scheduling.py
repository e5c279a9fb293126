"""Load: one sweep of many tiny trials, to measure what scheduling costs per trial.

From the sweep's MLflow runs alone (their start and end are set by the driver when Tune starts
and completes each trial, and each trial reports `startup_s`, its start-up before the first
training step): how close the makespan comes to perfect packing, how much idle slot time Tune
leaves between trials, and each trial's fixed start-up cost.
"""

import statistics
from dataclasses import dataclass, field

from bench.rows import Row
from sweeps import ablation as ablations
from trainers import tracking

TINY = {"train.epochs": 1, "data.limit": 32, "train.batch_size": 16, "train.log_every": 0}


@dataclass(frozen=True)
class TrialTimes:
    start: float  # unix seconds: Tune started the trial
    end: float  # Tune completed it
    startup_s: float  # trial start to its first training step, as the trial measured it
    parts: dict = field(default_factory=dict)  # startup.workers_s, startup.data_s, ...
    last_result: float = 0.0  # unix seconds the driver got the trial's last result

    @property
    def duration(self) -> float:
        return self.end - self.start


def trial_times(sweep_id: str) -> list[TrialTimes]:
    t = tracking.TAG
    runs = tracking.search_runs({f"{t}sweep_id": sweep_id, f"{t}role": "trial"})
    client = tracking.client()

    def last_result(run) -> float:
        history = client.get_metric_history(run.info.run_id, "test_loss")
        return max((m.timestamp for m in history), default=run.info.end_time) / 1000

    return [
        TrialTimes(
            r.info.start_time / 1000,
            r.info.end_time / 1000,
            r.data.metrics.get("startup_s", 0.0),
            {k: v for k, v in r.data.metrics.items() if k.startswith("startup.")},
            last_result(r),
        )
        for r in runs
        if r.info.end_time
    ]


def scheduling_rows(times: list[TrialTimes], concurrency: int) -> list[Row]:
    """Packing against the ideal (sum of durations / concurrency: Tune's own scalability
    target is 20% over it) and the idle slot time per trial against a trial's length; the
    details profile the overheads (start-up parts, teardown after the last result)."""
    n = len(times)
    makespan = max(t.end for t in times) - min(t.start for t in times)
    busy = sum(t.duration for t in times)
    ideal = busy / concurrency
    gap = max(0.0, makespan * concurrency - busy) / n  # slot-seconds no trial held, per trial
    mean_duration = busy / n
    startup = statistics.fmean(t.startup_s for t in times)
    parts = {  # the profile of the start-up: where its seconds go
        name: statistics.fmean(t.parts.get(name, 0.0) for t in times)
        for name in sorted({name for t in times for name in t.parts})
    }
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
        Row(
            "fixed cost share of a trial",
            startup / mean_duration,
            0.5,
            False,
            "mean trial duration; start-up = trial start to first training step",
            {"startup_s": startup, **parts, "mean_trial_s": mean_duration},
        ),
    ]


def load_ablation(trials: int) -> ablations.Ablation:
    """One value, `trials` seeds: every trial is the same tiny job."""
    raw = {"vary": {"model.bottleneck": ["identity"]}, "baseline": "identity", "seeds": trials}
    return ablations.parse("load", raw, ablations.ABLATIONS_DIR / "load.yaml")


def run_load(trials: int, cpus_per_worker: float) -> tuple[list[Row], int]:
    """Run the sweep and measure it; returns the rows and how many trials the table counted."""
    import ray

    from sweeps.runner import concurrency, ensure_ray, run_sweep

    overrides = TINY | {"resources.cpus_per_worker": cpus_per_worker}
    ablation = load_ablation(trials)
    ensure_ray()
    slots = concurrency(ablations.expand(ablation, overrides, trials, 0))
    report = run_sweep(ablation, overrides)
    counted = sum(row.n for row in report.ranking)
    rows = scheduling_rows(trial_times(report.sweep_id), slots)
    ray.shutdown()
    return rows, counted
