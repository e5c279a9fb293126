"""A Tune callback that turns each trial into one MLflow run, nested under its value's run
(sweeps.publish.values), itself nested under the sweep's run.

It runs in the sweep driver, the only process that writes to MLflow: trials never contend for
the store, a resumed trial continues the run found by its trial key instead of opening a
second one, and a failed trial's run ends FAILED with the reason. Writes go through the sweep's
`Outbox`, so a tracking outage delays them instead of failing the sweep.
"""

import time
from numbers import Real
from pathlib import Path
from typing import TYPE_CHECKING

import ray.tune
from ray.tune.result import AUTO_RESULT_KEYS

from data.registry import identity
from sweeps.publish import values
from sweeps.run.outbox import Outbox, sweep_outbox
from trainers import keys
from trainers.paths import data_dir

if TYPE_CHECKING:  # the driver's callbacks read the plan; they never import torch themselves
    from sweeps.define.plan import SweepPlan

SKIP = set(AUTO_RESULT_KEYS) | {
    keys.EPOCH,
    keys.REPORTED_AT,
    "done",
    "trial_id",
    "experiment_tag",
    "checkpoint_path",
    keys.RESTORED_CHECKPOINT,
}
TAG_PREFIXES = (keys.PLACEMENT, keys.TAG)  # string results under these become run tags


def metrics_of(result: dict) -> dict[str, float]:
    return {
        k: v
        for k, v in result.items()
        if k not in SKIP and isinstance(v, Real) and not isinstance(v, bool)
    }


def error_reason(trial) -> str:
    """The last line of the trial's error, which names the exception and its message: from the
    trial's local error file, which Tune writes at once (its copy in storage, which `get_error`
    reads, arrives later: a trial Tune reruns has none yet)."""
    name = trial.run_metadata.error_filename
    local = Path(trial.local_path, name) if trial.local_path and name else None
    if local is not None and local.is_file():
        text = local.read_text()
    else:
        text = str(trial.get_pickled_error() or trial.get_error() or "")
    lines = [line for line in text.strip().splitlines() if line.strip()] or ["trial failed"]
    return lines[-1][:5000]


def final_checkpoint(result: dict) -> str:
    """The checkpoint a trial's last result points to: the one it reported, or where a trial
    restarted after its final checkpoint was restored from (it reports no new one)."""
    return result.get("checkpoint_path") or result.get(keys.RESTORED_CHECKPOINT) or ""


def test_loss(trial) -> float:
    """A finished trial's test loss; NaN where it diverged or reported none."""
    last = trial.last_result or {}
    if last.get(keys.DIVERGED) or keys.TEST_LOSS not in last:
        return float("nan")
    return float(last[keys.TEST_LOSS])


def tags_of(result: dict) -> dict[str, str]:
    return {k: v for k, v in result.items() if isinstance(v, str) and k.startswith(TAG_PREFIXES)}


class MlflowTrialLogger(ray.tune.Callback):
    """Every write goes through the sweep's `Outbox`, so a tracking outage delays writes
    instead of failing the sweep or losing them, and Tune's loop never waits on the store."""

    def __init__(
        self,
        plan: "SweepPlan",
        sweep_id: str,
        parent_run_id: str,
        folder: Path,
        ended_by_watchdog: dict[str, str] | None = None,
    ):
        self.plan, self.sweep_id, self.parent_run_id = plan, sweep_id, parent_run_id
        self.folder = folder
        self.ended_by_watchdog = {} if ended_by_watchdog is None else ended_by_watchdog
        self.opened: set[str] = set()  # Tune trial ids whose run was queued for opening
        self.values_opened: set[str] = set()  # values whose run was queued for opening
        self.value_by_key = {t.key: t.value for t in plan.trials}  # O(1) per trial

    @property
    def outbox(self) -> Outbox:
        return sweep_outbox(self.folder)

    def key_tags(self, trial) -> dict[str, str]:
        return {keys.SWEEP_ID: self.sweep_id, keys.TRIAL_KEY: trial.config["trial"]}

    def value_of(self, trial) -> str:
        return self.value_by_key[trial.config["trial"]]

    def open_value(self, value: str) -> dict[str, str]:
        """The value run's key tags, after queueing its creation (or lookup) once."""
        key_tags = values.key_tags(self.sweep_id, value)
        if value not in self.values_opened:
            self.values_opened.add(value)
            sweep = {keys.SWEEP_ID: self.sweep_id, keys.ABLATION: self.plan.name}
            sweep |= {keys.VARY: self.plan.vary, keys.BASELINE: self.plan.baseline}
            self.outbox.open_run(
                key_tags,
                experiment=self.plan.experiment,
                name=values.run_name(value, self.plan.base.data.dataset),
                tags={**values.value_tags(sweep, value), **self.plan.tags},
                params={self.plan.vary: value},
                parent_id=self.parent_run_id,
            )
        return key_tags

    def open(self, trial) -> dict[str, str]:
        """The trial's key tags, after queueing its run's creation (or lookup) once."""
        key_tags = self.key_tags(trial)
        if trial.trial_id in self.opened:
            return key_tags
        self.opened.add(trial.trial_id)
        spec = self.plan.trial(trial.config["trial"])
        value_run = self.open_value(spec.value)
        tags = {
            **key_tags,
            keys.ROLE: keys.ROLE_TRIAL,
            keys.ABLATION: self.plan.name,
            keys.VARY: self.plan.vary,
            keys.VALUE: spec.value,
            keys.SEED: spec.seed,
            keys.TUNE_TRIAL_ID: trial.trial_id,
            keys.REPEAT: spec.repeat,
            **self.plan.tags,
        }
        if self.plan.value_tag:
            tags[self.plan.value_tag] = spec.value
        name = f"{spec.value}-{self.plan.base.data.dataset}-s{spec.seed}"
        if spec.repeat:
            name += f"-r{spec.repeat}"
        self.outbox.open_run(
            key_tags,
            experiment=self.plan.experiment,
            name=name,
            tags=tags,
            params=spec.config.to_params(),
            parent_key=value_run,
        )
        self.outbox.write("dataset", key_tags, **identity(spec.config.data, data_dir()))
        return key_tags

    def on_trial_start(self, iteration, trials, trial, **info):
        self.open(trial)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        """The result's tags (where it ran), per-step losses and metrics: one write, one request
        (a cluster's thousands of trials report faster than one request each per kind)."""
        points = [
            [n, s, v]
            for n, series in (result.get(keys.STEP_METRICS) or {}).items()
            for s, v in series
        ]
        self.outbox.write(
            "result",
            self.open(trial),
            metrics=metrics_of(result),
            step=int(result.get(keys.EPOCH, 0)),
            timestamp_ms=int(result.get(keys.REPORTED_AT) or time.time() * 1000),
            points=points,
            tags=tags_of(result),
        )

    def on_trial_complete(self, iteration, trials, trial, **info):
        last = trial.last_result or {}
        self.outbox.write(
            "complete",
            self.open(trial),
            diverged=last.get(keys.DIVERGED) or "",
            checkpoint=final_checkpoint(last),
        )
        self.update_value(trial, trials)

    def update_value(self, trial, trials) -> None:
        """The value run's n, mean and std over its seeds that have ended so far."""
        value = self.value_of(trial)
        ended = [t for t in trials if t is not trial and t.status == "TERMINATED"] + [trial]
        losses = [test_loss(t) for t in ended if self.value_of(t) == value]
        self.outbox.write(
            "metrics",
            self.open_value(value),
            metrics=values.running(losses),
            step=0,
            timestamp_ms=int(time.time() * 1000),  # a retried delivery is the same row
        )

    def reason(self, trial) -> str:
        """Why a trial errored: the watchdog's words where it ended the trial, else Tune's."""
        return self.ended_by_watchdog.get(trial.trial_id) or error_reason(trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self.outbox.write("fail", self.open(trial), reason=self.reason(trial))

    def on_trial_recover(self, iteration, trials, trial, **info):
        self.outbox.write("tags", self.open(trial), tags={keys.RETRIED: self.reason(trial)})

    def on_experiment_end(self, trials, **info):
        self.outbox.close()  # the runner drains what still waits, in this thread
