"""A Tune callback that turns each trial into one MLflow run nested under the sweep's run.

It runs in the sweep driver, the only process that writes to MLflow: trials never contend for
the store, a resumed trial continues the run found by its trial key instead of opening a
second one, and a failed trial's run ends FAILED with the reason. Writes go through the sweep's
`Outbox`, so a tracking outage delays them instead of failing the sweep.
"""

import time
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path

import ray.tune
from ray.tune.result import AUTO_RESULT_KEYS

from sweeps.outbox import Outbox
from trainers import tracking
from trainers.steps import STEP_METRICS

SKIP = set(AUTO_RESULT_KEYS) | {"epoch", "done", "trial_id", "experiment_tag", "checkpoint_path"}
TAG_PREFIXES = ("placement.", tracking.TAG)  # string results under these become run tags


@dataclass(frozen=True)
class SweepInfo:
    sweep_id: str
    ablation: str
    vary: str  # the varied setting's dotted path (several: comma-joined)
    experiment: str
    parent_run_id: str
    dataset: str
    tags: dict = field(default_factory=dict)  # extra tags for every trial (the probe's)
    value_tag: str = ""  # also tag each trial's value under this name (ovat.probe)


def metrics_of(result: dict) -> dict[str, float]:
    return {
        k: v
        for k, v in result.items()
        if k not in SKIP and isinstance(v, Real) and not isinstance(v, bool)
    }


def error_reason(trial) -> str:
    """The last line of the trial's error, which names the exception and its message."""
    error = trial.get_pickled_error() or trial.get_error()
    lines = str(error or "trial failed").strip().splitlines() or ["trial failed"]
    return lines[-1][:5000]


def tags_of(result: dict) -> dict[str, str]:
    return {k: v for k, v in result.items() if isinstance(v, str) and k.startswith(TAG_PREFIXES)}


class MlflowTrialLogger(ray.tune.Callback):
    """Every write goes through the sweep's `Outbox`, so a tracking outage delays writes
    instead of failing the sweep or losing them."""

    def __init__(self, sweep: SweepInfo, folder: Path):
        self.sweep = sweep
        self.outbox = Outbox(folder)
        self.opened: set[str] = set()  # Tune trial ids whose run was queued for opening

    def key_tags(self, trial) -> dict[str, str]:
        t = tracking.TAG
        return {f"{t}sweep_id": self.sweep.sweep_id, f"{t}trial_key": trial.config["trial"]["key"]}

    def open(self, trial) -> dict[str, str]:
        """The trial's key tags, after queueing its run's creation (or lookup) once."""
        key_tags = self.key_tags(trial)
        if trial.trial_id in self.opened:
            return key_tags
        self.opened.add(trial.trial_id)
        spec = trial.config["trial"]
        t = tracking.TAG
        tags = {
            **key_tags,
            f"{t}role": "trial",
            f"{t}ablation": self.sweep.ablation,
            f"{t}vary": self.sweep.vary,
            f"{t}value": spec["value"],
            f"{t}seed": spec["seed"],
            f"{t}tune_trial_id": trial.trial_id,
            f"{t}repeat": spec.get("repeat", 0),
            **self.sweep.tags,
        }
        if self.sweep.value_tag:
            tags[self.sweep.value_tag] = spec["value"]
        name = f"{spec['value']}-{self.sweep.dataset}-s{spec['seed']}"
        if spec.get("repeat"):
            name += f"-r{spec['repeat']}"
        self.outbox.open_run(
            key_tags,
            experiment=self.sweep.experiment,
            name=name,
            tags=tags,
            params=spec["config"],
            parent_id=self.sweep.parent_run_id,
        )
        return key_tags

    def on_trial_start(self, iteration, trials, trial, **info):
        self.open(trial)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        key_tags = self.open(trial)
        tags = tags_of(result)
        if tags:  # first: whoever sees an epoch's metrics also sees where it ran
            self.outbox.write("tags", key_tags, tags=tags)
        now = int(time.time() * 1000)
        points = [
            [n, s, v] for n, series in (result.get(STEP_METRICS) or {}).items() for s, v in series
        ]
        if points:
            self.outbox.write("points", key_tags, points=points, timestamp_ms=now)
        self.outbox.write(
            "metrics",
            key_tags,
            metrics=metrics_of(result),
            step=int(result.get("epoch", 0)),
            timestamp_ms=now,
        )

    def on_trial_complete(self, iteration, trials, trial, **info):
        last = trial.last_result or {}
        self.outbox.write(
            "complete",
            self.open(trial),
            diverged=last.get(f"{tracking.TAG}diverged") or "",
            checkpoint=last.get("checkpoint_path") or "",
        )

    def on_trial_error(self, iteration, trials, trial, **info):
        self.outbox.write("fail", self.open(trial), reason=error_reason(trial))

    def on_experiment_end(self, trials, **info):
        self.outbox.flush(force=True)  # what still waits is on disk for the runner to drain
