"""The sweep: a plan -> Ray Tune (one TorchTrainer per trial) -> MLflow -> ranking.

The plan arrives built and checked (`sweeps.define.ablation.plan`, before Ray starts): a typo costs a
second, not a cluster start-up, and every trial carries the parsed config it trains with.
"""

import contextlib
import dataclasses
import json
import os
import sys
from pathlib import Path

import ray
import ray.tune

from sweeps.define.plan import SweepPlan, new_sweep_id
from sweeps.errors import ResumeError, SweepInterrupted
from sweeps.publish import values
from sweeps.publish.registry import register_best
from sweeps.publish.summary import Published, publish
from sweeps.run.cluster import check_object_store, concurrency, ensure_ray, smallest_object_store
from sweeps.run.inputs import plan_streams, trial_inputs
from sweeps.run.mlflow_callback import MlflowTrialLogger
from sweeps.run.outages import through_outages
from sweeps.run.outbox import sweep_outbox
from sweeps.run.progress import TrialProgress
from sweeps.run.racer import SeedRacer
from sweeps.run.signals import stop_signals_as_interrupt
from sweeps.run.watchdog import TRIAL_RETRIES, TrialWatchdog
from trainers import keys, tracking
from trainers.paths import results_dir
from trainers.trial import trainable

PLAN_FILE = "plan.json"  # results/<sweep_id>/plan.json: what a resume needs besides Tune's state
# Tune snapshots its experiment state at most this often (default: >= 10 s); a driver killed
# within the window reruns a trial that had just finished, which the resume then skips.
os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")
# Tune's automatic CSV, JSON and TensorBoard loggers write files per trial that nothing reads
# (MLflow holds every result): off.
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
# MLflow retries a failing HTTP request 7 times over about 4 minutes, blocking Tune's event loop
# meanwhile; the sweep's outbox retries later instead, so one quick retry is enough here.
for _name, _value in (
    ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1"),
    ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1"),
    ("MLFLOW_HTTP_REQUEST_TIMEOUT", "30"),
):
    os.environ.setdefault(_name, _value)


def plan_path(sweep_id: str) -> Path:
    return results_dir() / sweep_id / PLAN_FILE


def load_plan(sweep_id: str) -> SweepPlan:
    path = plan_path(sweep_id)
    if not path.is_file():
        raise ResumeError(f"cannot resume {sweep_id}: {path} is missing")
    return SweepPlan.load(path)


def tune_storage() -> Path:
    return results_dir() / "ray"


@contextlib.contextmanager
def sweep_run_ends(parent: str, sweep_id: str):
    """The sweep's MLflow run never stays RUNNING: an error between its start and the ranking
    ends it FAILED with the reason as a tag (Ctrl-C outside Tune's loop: KILLED), and its value
    runs with it."""
    try:
        yield
    except SweepInterrupted:
        raise  # run_tuner ended the run KILLED with the resume command
    except BaseException as error:
        interrupted = isinstance(error, KeyboardInterrupt)
        reason = "interrupted" if interrupted else f"{type(error).__name__}: {error}"
        with contextlib.suppress(Exception):  # the store itself may be what failed
            tracking.set_tags(parent, {keys.STATUS: "failed", keys.ERROR: reason[:5000]})
            tracking.end_run(parent, status="KILLED" if interrupted else "FAILED")
            values.end_open(sweep_id, status="KILLED" if interrupted else "FAILED")
        raise


def run_plan(plan: SweepPlan, verbose: int = 0, sweep_id: str = "") -> Published:
    """Run every trial of the plan and publish its ranking; a plan that cannot run on this
    cluster is refused before anything is written."""
    ensure_ray()
    streams = plan_streams(plan, smallest_object_store())
    at_once = concurrency(plan.trials, streams=streams)  # refused first: a trial that never fits
    check_object_store([t.config.data for t in plan.trials], streams=streams)
    sweep_id = sweep_id or new_sweep_id(plan.name)
    plan = dataclasses.replace(plan, streamed=streams)
    plan.save(plan_path(sweep_id))
    sweep_tags = {
        keys.SWEEP_ID: sweep_id,
        keys.ROLE: keys.ROLE_SWEEP,
        keys.ABLATION: plan.name,
        keys.VARY: plan.vary,
        keys.BASELINE: plan.baseline,
        keys.TRIALS: len(plan.trials),
        **plan.tags,
    }
    if plan.rule:
        sweep_tags[keys.SEED_RULE] = json.dumps(dataclasses.asdict(plan.rule))
    parent = tracking.start_run(plan.experiment, sweep_id, sweep_tags, plan.base.to_params())
    with sweep_run_ends(parent, sweep_id):
        record_provenance(parent)
        tuner = make_tuner(plan, sweep_id, parent, at_once, verbose, streams)
        return run_tuner(tuner, plan, sweep_id, parent)


def record_provenance(parent: str) -> None:
    """Once per sweep, on its run: the command and make variables that started it, every
    installed package, and the uncommitted code changes (trials carry the commit and versions
    as tags and point here through their parent)."""
    tracking.set_tags(
        parent,
        {
            keys.COMMAND: " ".join(sys.argv)[:5000],
            keys.MAKE_VARIABLES: os.environ.get("MAKEFLAGS", "")[:5000],
        },
    )
    tracking.log_text(parent, tracking.installed_packages(), "environment.txt")
    changes = tracking.code_diff()
    if changes:
        tracking.log_text(parent, changes, "code.diff")


def make_tuner(
    plan: SweepPlan,
    sweep_id: str,
    parent: str,
    at_once: int,
    verbose: int,
    streams: frozenset[str] = frozenset(),
) -> ray.tune.Tuner:
    storage = tune_storage()
    if plan.rule:  # SEEDS=auto: the racer suggests each (value, seed) as results arrive
        trials = {"search_alg": SeedRacer(plan), "num_samples": len(plan.trials)}
        space = {}
    else:
        trials = {}
        space = {"trial": ray.tune.grid_search([t.key for t in plan.trials])}
    watchdog = TrialWatchdog(plan)
    return ray.tune.Tuner(
        trainable(trial_inputs(plan.trials, streams), str(storage / sweep_id)),
        param_space=space,
        tune_config=ray.tune.TuneConfig(
            **trials,
            max_concurrent_trials=at_once,
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
                MlflowTrialLogger(plan, sweep_id, parent, results_dir() / sweep_id, watchdog.ended),
                TrialProgress(plan),
                watchdog,
            ],
            # a trial that errored (the watchdog ended it, its driver died) reruns once, from
            # its last checkpoint (Train finds its run by name)
            failure_config=ray.tune.FailureConfig(max_failures=TRIAL_RETRIES),
            verbose=verbose,
        ),
    )


def resume_sweep(sweep_id: str, verbose: int = 0) -> Published:
    """Finish an interrupted sweep through `Tuner.restore`: finished trials stay finished,
    unfinished and errored ones continue from their last checkpoints in their own MLflow runs."""
    parents = tracking.sweep_runs(sweep_id, keys.ROLE_SWEEP)
    if not parents:
        raise ResumeError(f"no sweep {sweep_id!r} in {tracking.tracking_uri()}")
    plan, parent = load_plan(sweep_id), parents[-1]
    sweep_outbox(results_dir() / sweep_id).drain()  # what the killed driver left queued
    path = tune_storage() / sweep_id
    if not ray.tune.Tuner.can_restore(str(path)):
        raise ResumeError(f"cannot resume {sweep_id}: no Tune state under {path}")
    trials = tracking.sweep_runs(sweep_id)
    done = frozenset(r.data.tags[keys.TRIAL_KEY] for r in trials if r.info.status == "FINISHED")
    print(f"ovat: resuming {sweep_id}: {len(done)} of {len(plan.trials)} trials finished")
    ensure_ray()
    streams = plan_streams(plan, smallest_object_store())  # as the sweep started
    check_object_store([t.config.data for t in plan.trials], streams=streams)
    resumed = int(parent.data.tags.get(keys.RESUMED, 0)) + 1
    tracking.set_tags(parent.info.run_id, {keys.RESUMED: resumed, keys.STATUS: "running"})
    with sweep_run_ends(parent.info.run_id, sweep_id):
        tuner = ray.tune.Tuner.restore(
            str(path),
            trainable=trainable(trial_inputs(plan.trials, streams), str(path), done),
            resume_unfinished=True,
            resume_errored=True,
        )
        # Tuner.restore takes no RunConfig: the restored one keeps the first run's verbosity,
        # and Ray 2.60 has no public setter for it.
        tuner._local_tuner.get_run_config().verbose = verbose
        return run_tuner(tuner, plan, sweep_id, parent.info.run_id)


def unfinished_sweep(name: str) -> str:
    """The newest sweep of this ablation whose run is not FINISHED (RESUME=1)."""
    sweeps = tracking.search_runs({keys.ABLATION: name, keys.ROLE: keys.ROLE_SWEEP})
    open_ones = [r for r in sweeps if r.info.status != "FINISHED"]
    if not open_ones:
        raise ResumeError(f"no unfinished sweep of {name!r} in {tracking.tracking_uri()}")
    return open_ones[-1].data.tags[keys.SWEEP_ID]


def run_tuner(tuner, plan: SweepPlan, sweep_id: str, parent: str) -> Published:
    """Fit the Tuner; then deliver every queued MLflow write and publish, or say how to resume."""
    with stop_signals_as_interrupt() as stopped:
        results = tuner.fit()
    outbox = sweep_outbox(results_dir() / sweep_id)
    outbox.close()  # the callback's courier, where Tune ended without telling its callbacks
    resume_hint = f"make sweep ABLATION={plan.name} RESUME={sweep_id}"
    ended = results.num_terminated + results.num_errors
    expected = len(results) if plan.rule else len(plan.trials)  # a race ends when decided
    if stopped.is_set() or ended < expected:
        outbox.flush(force=True)  # best effort: what still waits is on disk for the resume
        tracking.set_tags(parent, {keys.STATUS: "interrupted"})
        tracking.end_run(parent, status="KILLED")
        values.end_open(sweep_id, status="KILLED")
        raise SweepInterrupted(
            f"sweep {sweep_id} interrupted with {ended} of {'at most ' if plan.rule else ''}"
            f"{len(plan.trials)} trials ended; "
            f"resume it with: {resume_hint}"
        )
    try:
        outbox.drain()
    except tracking.TrackingUnavailable as error:
        raise tracking.TrackingUnavailable(
            f"{error}; every trial ended: {resume_hint} delivers them and builds the ranking"
        ) from None
    return through_outages(lambda: finish(sweep_id, parent, plan.name, plan.baseline))


def trial_name(trial) -> str:
    """Short, stable names ('vq-s0'): no config dump in paths, nothing random for restore."""
    return trial.config["trial"].replace("/", "-").replace("=", "_")


def finish(sweep_id: str, parent_run_id: str, name: str, baseline: str) -> Published:
    """Publish the ranking; the sweep's run fails when any trial did (errored or diverged)."""
    trials = tracking.sweep_runs(sweep_id)
    failed = sum(1 for run in trials if run.info.status != "FINISHED")
    published = publish([sweep_id], [parent_run_id], name, baseline, {sweep_id: trials})
    if name != keys.PROBE_ABLATION:  # a probe reruns one trial: it has no winner to register
        model = register_best(published.ranking, sweep_id, parent_run_id, name)
        published = dataclasses.replace(published, model=model)
    tracking.set_tags(parent_run_id, {keys.FAILED_TRIALS: failed, keys.STATUS: "ended"})
    tracking.end_run(parent_run_id, failed=failed > 0)
    return published
