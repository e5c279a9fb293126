"""The sweep: a plan -> Ray Tune (one TorchTrainer per trial) -> MLflow -> ranking.

The plan arrives built and checked (`sweeps.ablation.plan`, before Ray starts): a typo costs a
second, not a cluster start-up, and every trial carries the parsed config it trains with.
"""

import contextlib
import dataclasses
import functools
import math
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import ray
import ray.tune

from data.config import DataConfig
from data.registry import images_to_load, prepared_folder
from data.splits import SPLITS
from sweeps.errors import ResourceError, ResumeError, SweepInterrupted
from sweeps.mlflow_callback import MlflowTrialLogger
from sweeps.outbox import Outbox
from sweeps.plan import SweepPlan, Trial, new_sweep_id
from sweeps.progress import TrialProgress
from sweeps.publish import Published, publish
from sweeps.registry import register_best
from trainers import keys, tracking
from trainers.evaluation import EVAL_SPLITS, load_splits
from trainers.flops import train_flops_per_image
from trainers.paths import data_dir, results_dir
from trainers.steps import steps_per_epoch
from trainers.streaming import RAY_DATA_ENV, STREAM_CPUS
from trainers.streaming import streams as streams_train
from trainers.trial import trainable, trial_resources

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


def variant_key(data: DataConfig) -> str:
    """The prepared split a trial reads: its folder and the images taken from it."""
    return f"{prepared_folder(data, data_dir()).name}-limit{data.limit}"


def data_key(data: DataConfig) -> str:
    """A trial's data as the streaming decision sees it: the prepared split and its setting."""
    return f"{variant_key(data)}-stream-{data.stream}"


def copy_key(data: DataConfig, streams: frozenset[str]) -> str:
    """Trials share one object-store copy exactly when they read the same prepared split the
    same way (in memory: every split; streamed: val and test), whatever their data.stream
    setting says (`auto` and `off` both left in memory share theirs)."""
    way = "streamed" if data_key(data) in streams else "in-memory"
    return f"{variant_key(data)}-{way}"


def largest_object_store(nodes: list[dict] | None = None) -> float:
    nodes = ray.nodes() if nodes is None else nodes
    stores = [n["Resources"].get("object_store_memory", 0) for n in nodes if n["Alive"]]
    return max(stores, default=0)


def split_bytes(data: DataConfig, splits: tuple[str, ...] = ()) -> int:
    return images_to_load(data, data_dir(), splits) * 3 * data.resolution**2


def streamed(data: list[DataConfig], store: float) -> frozenset[str]:
    """The data keys whose train split is streamed (data.stream: on, or auto and too large);
    each distinct variant is counted once (a layout not yet prepared is listed to count it)."""
    distinct = {data_key(d): d for d in data}
    return frozenset(
        key for key, d in distinct.items() if streams_train(d, split_bytes(d, ("train",)), store)
    )


# Counted once per model and data config in the driver, not at every trial's start-up: a count
# runs a CPU forward and backward at full resolution (0.17 s at 32 px, 0.83 s at 256 px here).
flops_per_image = functools.cache(train_flops_per_image)


def trial_inputs(trials: tuple[Trial, ...], streams: frozenset[str] = frozenset()) -> dict:
    """Per trial key: the trial, its data in the object store (each distinct variant prepared
    and put once per sweep; val and test only where the train split is streamed, with the
    prepared folder to stream it from) and its FLOPs per image."""
    refs: dict[str, ray.ObjectRef] = {}
    train_images: dict[str, int] = {}
    inputs = {}
    for trial in trials:
        cfg = trial.config
        streamed_train = data_key(cfg.data) in streams
        key = copy_key(cfg.data, streams)
        if key not in refs:
            names = EVAL_SPLITS if streamed_train else SPLITS
            splits = load_splits(cfg, names)
            train_images[key] = images_to_load(cfg.data, data_dir(), ("train",))
            refs[key] = ray.put(splits)
        steps_per_epoch(train_images[key], cfg.train.batch_size, cfg.resources.workers)
        inputs[trial.key] = {
            "trial": trial,
            "data": refs[key],
            "train_folder": str(prepared_folder(cfg.data, data_dir())) if streamed_train else "",
            "flops_per_image": flops_per_image(cfg.model, cfg.data),
        }
    return inputs


def concurrency(
    trials: tuple[Trial, ...], available: dict | None = None, streams: frozenset[str] = frozenset()
) -> int:
    """How many trials fit on the cluster at once (e.g. 0.25 GPU per trial: four per GPU); an
    error naming the shortfall if one never fits. With trials of several sizes the largest
    decides: Tune's cap is one number, and it must never admit more trials than fit. A trial
    whose train split is streamed counts STREAM_CPUS more, left free for its Ray Data reads
    (trials would otherwise take every CPU and starve their own input)."""
    available = ray.cluster_resources() if available is None else available
    needs = set()
    for t in trials:
        need = trial_resources(t.config.resources)
        if data_key(t.config.data) in streams:
            need["CPU"] = need.get("CPU", 0) + STREAM_CPUS
        needs.add(tuple(sorted(need.items())))
    fits = []
    for need in needs:
        short = [(r, a) for r, a in need if available.get(r, 0) < a]
        if short:
            wants = " and ".join(f"{a:g} {r}" for r, a in short)
            has = " and ".join(f"{available.get(r, 0):g} {r}" for r, _ in short)
            raise ResourceError(
                f"one trial needs {wants} but the cluster has {has}; lower resources.* or add nodes"
            )
        fits.append(min(math.floor(available[r] / a + 1e-9) for r, a in need))
    return max(1, min(fits))


def check_object_store(
    data: list[DataConfig], nodes: list[dict] | None = None, streams: frozenset[str] = frozenset()
) -> None:
    """The sweep's in-memory data (each distinct variant once; val and test only where the
    train split is streamed) must fit one node's object store: every node that runs a trial
    holds a copy. Said before anything is decoded, put or logged."""
    distinct = {copy_key(cfg, streams): cfg for cfg in data}
    need = sum(
        split_bytes(c, EVAL_SPLITS if data_key(c) in streams else ()) for c in distinct.values()
    )
    store = largest_object_store(nodes)
    if need > store:
        cfg = next(iter(distinct.values()))
        raise ResourceError(
            f"the sweep's data ({need / 1e9:.3g} GB of uint8 pixels: {cfg.dataset} at "
            f"{cfg.resolution} px) does not fit in Ray's object store ({store / 1e9:.3g} GB on "
            "the largest node): lower RES= (data.resolution), set data.limit=<images per split>, "
            "stream the train split from disk (data.stream=on), or give the nodes more "
            "object-store memory (ray start --object-store-memory)"
        )


def ensure_ray() -> None:
    """Start or join Ray; every process of this job gets RAY_DATA_ENV (the streamed path's read
    planning), each variable's value from this environment where it is set (a cluster's
    workers do not inherit the driver's environment)."""
    if not ray.is_initialized():
        env = {name: os.environ.get(name, value) for name, value in RAY_DATA_ENV.items()}
        ray.init(
            address=os.environ.get("RAY_ADDRESS"),
            include_dashboard=False,
            configure_logging=False,
            log_to_driver=False,
            runtime_env={"env_vars": env},
        )


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
def sweep_run_ends(parent: str):
    """The sweep's MLflow run never stays RUNNING: an error between its start and the ranking
    ends it FAILED with the reason as a tag (Ctrl-C outside Tune's loop: KILLED)."""
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
        raise


def run_plan(plan: SweepPlan, verbose: int = 0, sweep_id: str = "") -> Published:
    """Run every trial of the plan and publish its ranking; a plan that cannot run on this
    cluster is refused before anything is written."""
    ensure_ray()
    data = [t.config.data for t in plan.trials]
    streams = streamed(data, largest_object_store())
    at_once = concurrency(plan.trials, streams=streams)  # refused first: a trial that never fits
    check_object_store(data, streams=streams)
    sweep_id = sweep_id or new_sweep_id(plan.name)
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
    parent = tracking.start_run(plan.experiment, sweep_id, sweep_tags, plan.base.to_params())
    with sweep_run_ends(parent):
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
    return ray.tune.Tuner(
        trainable(trial_inputs(plan.trials, streams), str(storage / sweep_id)),
        param_space={"trial": ray.tune.grid_search([t.key for t in plan.trials])},
        tune_config=ray.tune.TuneConfig(
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
                MlflowTrialLogger(plan, sweep_id, parent, results_dir() / sweep_id),
                TrialProgress(plan),
            ],
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
    Outbox(results_dir() / sweep_id).drain()  # writes the killed driver could not deliver
    path = tune_storage() / sweep_id
    if not ray.tune.Tuner.can_restore(str(path)):
        raise ResumeError(f"cannot resume {sweep_id}: no Tune state under {path}")
    trials = tracking.sweep_runs(sweep_id)
    done = frozenset(r.data.tags[keys.TRIAL_KEY] for r in trials if r.info.status == "FINISHED")
    print(f"ovat: resuming {sweep_id}: {len(done)} of {len(plan.trials)} trials finished")
    ensure_ray()
    data = [t.config.data for t in plan.trials]
    streams = streamed(data, largest_object_store())
    check_object_store(data, streams=streams)
    resumed = int(parent.data.tags.get(keys.RESUMED, 0)) + 1
    tracking.set_tags(parent.info.run_id, {keys.RESUMED: resumed, keys.STATUS: "running"})
    with sweep_run_ends(parent.info.run_id):
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


# Tune's own Ctrl-C handler would stop the run without telling us; ours (below) does the same
# through Tune's SIGUSR1 handler and remembers that the sweep was stopped.
os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # Ctrl-C, and a scheduler's or `kill`'s stop


@contextlib.contextmanager
def stop_signals_as_interrupt() -> Iterator[threading.Event]:
    """Ctrl-C and SIGTERM take Tune's graceful path (state saved, running trials stopped,
    `fit` returns) and set the event: a trial stopped that way must not count as finished or
    failed. A second Ctrl-C during the shutdown is a KeyboardInterrupt."""
    stopped = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stopped
        return

    def stop(signum, frame):
        if stopped.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stopped.set()
        os.kill(os.getpid(), signal.SIGUSR1)  # Tune's graceful stop

    previous = {s: signal.signal(s, stop) for s in STOP_SIGNALS}
    try:
        yield stopped
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def run_tuner(tuner, plan: SweepPlan, sweep_id: str, parent: str) -> Published:
    """Fit the Tuner; then deliver every queued MLflow write and publish, or say how to resume."""
    with stop_signals_as_interrupt() as stopped:
        results = tuner.fit()
    outbox = Outbox(results_dir() / sweep_id)
    resume_hint = f"make sweep ABLATION={plan.name} RESUME={sweep_id}"
    ended = results.num_terminated + results.num_errors
    if stopped.is_set() or ended < len(plan.trials):
        outbox.flush(force=True)  # best effort: what still waits is on disk for the resume
        tracking.set_tags(parent, {keys.STATUS: "interrupted"})
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
    return trial.config["trial"].replace("/", "-").replace("=", "_")


def finish(sweep_id: str, parent_run_id: str, name: str, baseline: str) -> Published:
    """Publish the ranking; the sweep's run fails when any trial did (errored or diverged)."""
    failed = sum(1 for run in tracking.sweep_runs(sweep_id) if run.info.status != "FINISHED")
    published = publish([sweep_id], [parent_run_id], name, baseline)
    model = register_best(published.ranking, sweep_id, parent_run_id, name)
    published = dataclasses.replace(published, model=model)
    tracking.set_tags(parent_run_id, {keys.FAILED_TRIALS: failed, keys.STATUS: "ended"})
    tracking.end_run(parent_run_id, failed=failed > 0)
    return published
