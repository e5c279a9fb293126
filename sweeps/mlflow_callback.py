"""A Tune callback that turns each trial into one MLflow run nested under the sweep's run.

It runs in the sweep driver, the only process that writes to MLflow: trials never contend for
the store, a resumed trial continues the run found by its trial key instead of opening a
second one, and a failed trial's run ends FAILED with the reason.
"""

from dataclasses import dataclass, field
from numbers import Real

import ray.tune
from ray.tune.result import AUTO_RESULT_KEYS

from trainers import tracking

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
    def __init__(self, sweep: SweepInfo):
        self.sweep = sweep
        self.runs: dict[str, str] = {}  # Tune trial id -> MLflow run id

    def trial_tags(self, spec: dict) -> dict[str, str]:
        t = tracking.TAG
        return {f"{t}sweep_id": self.sweep.sweep_id, f"{t}trial_key": spec["key"]}

    def run_for(self, trial) -> str:
        if trial.trial_id not in self.runs:
            spec = trial.config["trial"]
            key_tags = self.trial_tags(spec)
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
            self.runs[trial.trial_id] = tracking.find_run(key_tags) or tracking.start_run(
                self.sweep.experiment, name, tags, spec["config"], self.sweep.parent_run_id
            )
        return self.runs[trial.trial_id]

    def on_trial_start(self, iteration, trials, trial, **info):
        self.run_for(trial)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        run_id = self.run_for(trial)
        tags = tags_of(result)
        if tags:  # first: whoever sees an epoch's metrics also sees where it ran
            tracking.set_tags(run_id, tags)
        tracking.log_metrics(run_id, metrics_of(result), step=int(result.get("epoch", 0)))

    def on_trial_complete(self, iteration, trials, trial, **info):
        run_id = self.run_for(trial)
        if tracking.run_status(run_id) == "FINISHED":
            return  # skipped on resume: logged and ended before the driver died
        diverged = (trial.last_result or {}).get(f"{tracking.TAG}diverged")
        if diverged:
            tracking.set_tags(run_id, {f"{tracking.TAG}error": diverged})
            tracking.end_run(run_id, failed=True)
            return
        checkpoint = (trial.last_result or {}).get("checkpoint_path")
        if checkpoint:
            tracking.log_artifacts(run_id, checkpoint, "checkpoint")
        tracking.end_run(run_id)

    def on_trial_error(self, iteration, trials, trial, **info):
        run_id = self.run_for(trial)
        tracking.set_tags(run_id, {f"{tracking.TAG}error": error_reason(trial)})
        tracking.end_run(run_id, failed=True)
