"""The sweep: ablation -> trials -> Ray Tune (one TorchTrainer per trial) -> MLflow -> ranking.

Everything that can fail on user input (ablation, values, overrides, dataset) is checked
before Ray starts, so a typo costs a second, not a cluster start-up.
"""

import contextlib
import dataclasses
import functools
import json
import math
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
import ray.tune

from data.registry import prepared_folder
from sweeps import ablation as ablations
from sweeps import report
from sweeps.errors import ResumeError, SweepInterrupted
from sweeps.mlflow_callback import MlflowTrialLogger, SweepInfo
from sweeps.outbox import Outbox
from sweeps.progress import TrialProgress
from trainers import tracking
from trainers.config import ExperimentConfig
from trainers.evaluation import load_splits
from trainers.flops import train_flops_per_image
from trainers.paths import data_dir, results_dir
from trainers.trial import trainable, trial_resources


class ResourceError(RuntimeError):
    pass


PLAN_FILE = "plan.json"  # results/<sweep_id>/plan.json: what a resume needs besides Tune's state
# Tune snapshots its experiment state at most this often (default: >= 10 s); a driver killed
# within the window reruns a trial that had just finished, which the resume then skips.
os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")
# MLflow retries a failing HTTP request 7 times over about 4 minutes, blocking Tune's event loop
# meanwhile; the sweep's outbox retries later instead, so one quick retry is enough here.
for _name, _value in (
    ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1"),
    ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1"),
    ("MLFLOW_HTTP_REQUEST_TIMEOUT", "30"),
):
    os.environ.setdefault(_name, _value)


def data_key(cfg: ExperimentConfig) -> str:
    """Trials share one object-store copy exactly when they read the same prepared split."""
    return f"{prepared_folder(cfg.data, data_dir()).name}-limit{cfg.data.limit}"


def put_datasets(trials: list[ablations.TrialSpec]) -> dict[str, ray.ObjectRef]:
    """Prepare each distinct data variant once and put it in the object store once per sweep."""
    refs = {}
    for spec in trials:
        cfg = ExperimentConfig.from_flat(spec.config)
        key = data_key(cfg)
        if key not in refs:
            refs[key] = ray.put(load_splits(cfg))
    return refs


def concurrency(trials: list[ablations.TrialSpec], available: dict | None = None) -> int:
    """How many trials fit on the cluster at once (e.g. 0.25 GPU per trial: four per GPU); an
    error naming the shortfall if one never fits. Tune's cap uses the smallest trial's needs:
    a larger trial beyond what fits waits for its workers, holding only its 0.01-CPU driver."""
    available = ray.cluster_resources() if available is None else available
    needs = {
        tuple(sorted(trial_resources(ExperimentConfig.from_flat(t.config).resources).items()))
        for t in trials
    }
    fits = []
    for need in needs:
        for resource, amount in need:
            if available.get(resource, 0) < amount:
                raise ResourceError(
                    f"one trial needs {amount:g} {resource} but the cluster has "
                    f"{available.get(resource, 0):g}; lower resources.* or add nodes"
                )
        fits.append(min(math.floor(available[r] / a + 1e-9) for r, a in need))
    return max(1, max(fits))


def ensure_ray() -> None:
    if not ray.is_initialized():
        ray.init(
            address=os.environ.get("RAY_ADDRESS"),
            include_dashboard=False,
            configure_logging=False,
            log_to_driver=False,
        )


def new_sweep_id(name: str) -> str:
    return f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


@dataclass(frozen=True)
class Plan:
    """What one Tune run executes: a sweep of an ablation, or a probe of one run."""

    name: str  # ablation name, or "probe"
    trials: list[ablations.TrialSpec]
    base: ExperimentConfig
    vary: str
    baseline: str
    experiment: str
    tags: dict[str, str] = field(default_factory=dict)  # added to the sweep and every trial
    value_tag: str = ""  # a tag that repeats each trial's value (the probe's ovat.probe)


def run_sweep(
    ablation: ablations.Ablation,
    overrides: dict[str, Any] | None = None,
    seeds: int | None = None,
    first_seed: int = 0,
    verbose: int = 0,
) -> report.Report:
    """Run every (value, seed) trial of the ablation and publish its ranking."""
    trials = ablations.expand(ablation, overrides or {}, seeds or ablation.seeds, first_seed)
    plan = Plan(
        ablation.name,
        trials,
        ablations.base_config(ablation, overrides or {}),
        ",".join(ablation.vary),
        ablations.baseline_label(ablation),
        f"ovat-{ablation.name}",
    )
    return run_plan(plan, verbose)


def save_plan(plan: Plan, sweep_id: str) -> Path:
    path = results_dir() / sweep_id / PLAN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = dataclasses.asdict(plan) | {"base": plan.base.to_flat()}
    path.write_text(json.dumps(fields, indent=1))
    return path


def load_plan(sweep_id: str) -> Plan:
    path = results_dir() / sweep_id / PLAN_FILE
    if not path.is_file():
        raise ResumeError(f"cannot resume {sweep_id}: {path} is missing")
    fields = json.loads(path.read_text())
    trials = [ablations.TrialSpec(**t) for t in fields.pop("trials")]
    base = ExperimentConfig.from_flat(fields.pop("base"))
    return Plan(trials=trials, base=base, **fields)


def run_plan(plan: Plan, verbose: int = 0) -> report.Report:
    sweep_id = new_sweep_id(plan.name)
    save_plan(plan, sweep_id)
    t = tracking.TAG
    sweep_tags = {
        f"{t}sweep_id": sweep_id,
        f"{t}role": "sweep",
        f"{t}ablation": plan.name,
        f"{t}vary": plan.vary,
        f"{t}baseline": plan.baseline,
        f"{t}trials": len(plan.trials),
        **plan.tags,
    }
    parent = tracking.start_run(plan.experiment, sweep_id, sweep_tags, plan.base.to_flat())
    ensure_ray()
    sweep = SweepInfo(
        sweep_id,
        plan.name,
        plan.vary,
        plan.experiment,
        parent,
        plan.base.data.dataset,
        plan.tags,
        plan.value_tag,
    )
    storage = tune_storage()
    tuner = ray.tune.Tuner(
        trainable(put_datasets(plan.trials), str(storage / sweep_id)),
        param_space={"trial": ray.tune.grid_search([trial_payload(t) for t in plan.trials])},
        tune_config=ray.tune.TuneConfig(
            max_concurrent_trials=concurrency(plan.trials),
            # The next trial reuses a finished trial's actor (Tune's function trainable resets
            # in place) instead of a new process importing torch: measured here, 8 one-CPU
            # trials on 2 CPUs went from 9.5 s to 0.3 s of idle slot per trial.
            reuse_actors=True,
            trial_name_creator=trial_name,
            trial_dirname_creator=trial_name,
        ),
        run_config=ray.tune.RunConfig(
            name=sweep_id,
            storage_path=str(storage),
            callbacks=[
                MlflowTrialLogger(sweep, results_dir() / sweep_id),
                TrialProgress(len(plan.trials)),
            ],
            verbose=verbose,
        ),
    )
    return fit(tuner, plan, sweep_id, parent)


def tune_storage() -> Path:
    return results_dir() / "ray"


def resume_sweep(sweep_id: str, verbose: int = 0) -> report.Report:
    """Finish an interrupted sweep through `Tuner.restore`: finished trials stay finished,
    unfinished and errored ones continue from their last checkpoints in their own MLflow runs."""
    t = tracking.TAG
    parents = tracking.search_runs({f"{t}sweep_id": sweep_id, f"{t}role": "sweep"})
    if not parents:
        raise ResumeError(f"no sweep {sweep_id!r} in {tracking.tracking_uri()}")
    plan, parent = load_plan(sweep_id), parents[-1]
    Outbox(results_dir() / sweep_id).drain()  # writes the killed driver could not deliver
    path = tune_storage() / sweep_id
    if not ray.tune.Tuner.can_restore(str(path)):
        raise ResumeError(f"cannot resume {sweep_id}: no Tune state under {path}")
    trials = tracking.search_runs({f"{t}sweep_id": sweep_id, f"{t}role": "trial"})
    done = frozenset(r.data.tags[f"{t}trial_key"] for r in trials if r.info.status == "FINISHED")
    print(f"ovat: resuming {sweep_id}: {len(done)} of {len(plan.trials)} trials finished")
    ensure_ray()
    resumed = int(parent.data.tags.get(f"{t}resumed", 0)) + 1
    tracking.set_tags(parent.info.run_id, {f"{t}resumed": resumed, f"{t}status": "running"})
    tuner = ray.tune.Tuner.restore(
        str(path),
        trainable=trainable(put_datasets(plan.trials), str(path), done),
        resume_unfinished=True,
        resume_errored=True,
    )
    return fit(tuner, plan, sweep_id, parent.info.run_id, verbose)


def unfinished_sweep(name: str) -> str:
    """The newest sweep of this ablation whose run is not FINISHED (RESUME=1)."""
    t = tracking.TAG
    sweeps = tracking.search_runs({f"{t}ablation": name, f"{t}role": "sweep"})
    open_ones = [r for r in sweeps if r.info.status != "FINISHED"]
    if not open_ones:
        raise ResumeError(f"no unfinished sweep of {name!r} in {tracking.tracking_uri()}")
    return open_ones[-1].data.tags[f"{t}sweep_id"]


@contextlib.contextmanager
def sigterm_as_interrupt():
    """SIGTERM (a scheduler's stop) gets Tune's graceful Ctrl-C path: state saved, then return."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGUSR1))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def fit(tuner, plan: Plan, sweep_id: str, parent: str, verbose: int = 0) -> report.Report:
    with sigterm_as_interrupt():
        results = tuner.fit()
    outbox = Outbox(results_dir() / sweep_id)
    resume_hint = f"make sweep ABLATION={plan.name} RESUME={sweep_id}"
    ended = results.num_terminated + results.num_errors
    if ended < len(plan.trials):
        outbox.flush(force=True)  # best effort: what still waits is on disk for the resume
        t = tracking.TAG
        tracking.set_tags(parent, {f"{t}status": "interrupted"})
        tracking.end_run(parent, status="KILLED")
        raise SweepInterrupted(
            f"sweep {sweep_id} interrupted with {ended} of {len(plan.trials)} trials ended; "
            f"resume it with: {resume_hint}"
        )
    try:
        outbox.drain()
    except tracking.TrackingUnavailable as error:
        raise tracking.TrackingUnavailable(
            f"{error}; every trial ended: {resume_hint} delivers them and builds the ranking"
        ) from None
    return finish(sweep_id, parent, plan.name, plan.baseline)


def trial_name(trial) -> str:
    """Short, stable names ('vq-s0'): no config dump in paths, nothing random for restore."""
    spec = trial.config["trial"]
    return spec["key"].replace("/", "-").replace("=", "_")


# Counted once per model and data config in the driver, not at every trial's start-up: a count
# runs a CPU forward and backward at full resolution (0.17 s at 32 px, 0.83 s at 256 px here).
flops_per_image = functools.cache(train_flops_per_image)


def trial_payload(spec: ablations.TrialSpec) -> dict:
    cfg = ExperimentConfig.from_flat(spec.config)
    return {
        "value": spec.value,
        "seed": spec.seed,
        "key": spec.key,
        "repeat": spec.repeat,
        "node": spec.node,
        "config": spec.config,
        "data_key": data_key(cfg),
        "flops_per_image": flops_per_image(cfg.model, cfg.data),
    }


def finish(sweep_id: str, parent_run_id: str, name: str, baseline: str) -> report.Report:
    """Publish the ranking; the sweep's run fails when any trial did (errored or diverged)."""
    trials = tracking.search_runs(
        {f"{tracking.TAG}sweep_id": sweep_id, f"{tracking.TAG}role": "trial"}
    )
    failed = sum(1 for run in trials if run.info.status != "FINISHED")
    outcome = report.publish([sweep_id], [parent_run_id], name, baseline)
    t = tracking.TAG
    tracking.set_tags(parent_run_id, {f"{t}failed_trials": failed, f"{t}status": "ended"})
    tracking.end_run(parent_run_id, failed=failed > 0)
    return outcome
