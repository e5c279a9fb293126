"""The sweep: ablation -> trials -> Ray Tune (one TorchTrainer per trial) -> MLflow -> ranking.

Everything that can fail on user input (ablation, values, overrides, dataset) is checked
before Ray starts, so a typo costs a second, not a cluster start-up.
"""

import math
import os
import time
from typing import Any

import ray
import ray.tune

from sweeps import ablation as ablations
from sweeps import report
from sweeps.mlflow_callback import MlflowTrialLogger, SweepInfo
from sweeps.progress import TrialProgress
from trainers import tracking
from trainers.config import ExperimentConfig
from trainers.evaluation import load_splits
from trainers.paths import results_dir
from trainers.trial import trainable, trial_resources


class ResourceError(RuntimeError):
    pass


def data_key(cfg: ExperimentConfig) -> str:
    d = cfg.data
    return f"{d.dataset}-{d.resolution}px-limit{d.limit}-{d.root}"


def put_datasets(trials: list[ablations.TrialSpec]) -> dict[str, ray.ObjectRef]:
    """Prepare each distinct data variant once and put it in the object store once per sweep."""
    refs = {}
    for spec in trials:
        cfg = ExperimentConfig.from_flat(spec.config)
        key = data_key(cfg)
        if key not in refs:
            refs[key] = ray.put(load_splits(cfg))
    return refs


def concurrency(trials: list[ablations.TrialSpec]) -> int:
    """How many trials fit on the cluster at once; an error if one never fits."""
    available = ray.cluster_resources()
    need = trial_resources(ExperimentConfig.from_flat(trials[0].config).resources)
    fits = []
    for resource, amount in need.items():
        if available.get(resource, 0) < amount:
            raise ResourceError(
                f"one trial needs {amount:g} {resource} but the cluster has "
                f"{available.get(resource, 0):g}; lower resources.* or add nodes"
            )
        fits.append(math.floor(available[resource] / amount + 1e-9))
    return max(1, min(fits))


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


def run_sweep(
    ablation: ablations.Ablation,
    overrides: dict[str, Any] | None = None,
    seeds: int | None = None,
    first_seed: int = 0,
    verbose: int = 0,
) -> report.Report:
    """Run every (value, seed) trial of the ablation and publish its ranking."""
    name = ablation.name
    trials = ablations.expand(ablation, overrides or {}, seeds or ablation.seeds, first_seed)
    base = ablations.base_config(ablation, overrides or {})
    sweep_id = new_sweep_id(name)
    vary = ",".join(ablation.vary)
    experiment = f"ovat-{name}"
    parent = tracking.start_run(
        experiment,
        sweep_id,
        {
            f"{tracking.TAG}sweep_id": sweep_id,
            f"{tracking.TAG}role": "sweep",
            f"{tracking.TAG}ablation": name,
            f"{tracking.TAG}vary": vary,
            f"{tracking.TAG}baseline": ablations.baseline_label(ablation),
            f"{tracking.TAG}trials": len(trials),
        },
        base.to_flat(),
    )
    ensure_ray()
    sweep = SweepInfo(sweep_id, name, vary, experiment, parent, base.data.dataset)
    storage = results_dir() / "ray"
    tuner = ray.tune.Tuner(
        trainable(put_datasets(trials), str(storage / sweep_id)),
        param_space={"trial": ray.tune.grid_search([trial_payload(t) for t in trials])},
        tune_config=ray.tune.TuneConfig(
            max_concurrent_trials=concurrency(trials),
            trial_name_creator=trial_name,
            trial_dirname_creator=trial_name,
        ),
        run_config=ray.tune.RunConfig(
            name=sweep_id,
            storage_path=str(storage),
            callbacks=[MlflowTrialLogger(sweep), TrialProgress(len(trials))],
            verbose=verbose,
        ),
    )
    results = tuner.fit()
    failed = sum(1 for r in results if r.error is not None)
    return finish(sweep_id, parent, name, ablations.baseline_label(ablation), failed)


def trial_name(trial) -> str:
    """Short, stable names ('vq-s0'): no config dump in paths, nothing random for restore."""
    spec = trial.config["trial"]
    return f"{spec['value']}-s{spec['seed']}".replace("/", "_").replace("=", "_")


def trial_payload(spec: ablations.TrialSpec) -> dict:
    cfg = ExperimentConfig.from_flat(spec.config)
    return {
        "value": spec.value,
        "seed": spec.seed,
        "key": spec.key,
        "config": spec.config,
        "data_key": data_key(cfg),
    }


def finish(
    sweep_id: str, parent_run_id: str, name: str, baseline: str, failed: int
) -> report.Report:
    outcome = report.publish([sweep_id], [parent_run_id], name, baseline)
    tracking.set_tags(parent_run_id, {f"{tracking.TAG}failed_trials": failed})
    tracking.end_run(parent_run_id, failed=failed > 0)
    return outcome
