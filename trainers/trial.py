"""One Tune trial = one Ray Train `TorchTrainer` run (the Train V2 way of nesting them).

The trial function is only a driver: it asks for almost no resources itself, and its
TorchTrainer's workers hold the trial's real CPUs and GPUs.
"""

import os
import time

import ray.train
import ray.tune
from ray.train.torch import TorchTrainer
from ray.tune.integration.ray_train import TuneReportCallback

from trainers import hardware
from trainers.config import ResourcesConfig
from trainers.loop import train_loop_per_worker

# Tune refuses an empty request and {"CPU": 0} alone; one byte of memory is accepted and leaves
# every CPU to the workers (a 0.01 CPU driver would make 2 one-CPU trials not fit on 2 CPUs).
DRIVER_RESOURCES = {"CPU": 0, "memory": 1}


# How often Train's controller polls its workers (Ray's default: 2 s), which is also how late it
# may see them finished: a trial held its slot 2.9 s after its last result instead of 5.7 s
# (`make bench-load`, 4 trials). A poll is one small remote call per worker; an answer that comes
# late is only a missed check (a worker is declared dead after 10 minutes of them).
POLL_ENV = {"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.25"}

NODE_LABEL = "ray.io/node-id"  # the label Ray gives every node: pins to one node, by id


def worker_resources(resources: ResourcesConfig) -> dict[str, float]:
    """What one Train worker of a trial holds."""
    per_worker = {"CPU": float(resources.cpus_per_worker)}
    if resources.gpus_per_worker > 0:
        per_worker[resources.gpu_resource] = float(resources.gpus_per_worker)
    return per_worker


def scaling_config(resources: ResourcesConfig, node: str = "") -> ray.train.ScalingConfig:
    """Workers' resources; `node` (a node id) pins them to that node through its id label,
    which also tells apart nodes that share an IP (several Ray nodes on one machine)."""
    return ray.train.ScalingConfig(
        num_workers=resources.workers,
        use_gpu=resources.use_gpu,
        resources_per_worker=worker_resources(resources),
        label_selector={NODE_LABEL: node} if node else None,
    )


def trial_resources(resources: ResourcesConfig) -> dict[str, float]:
    """What one trial holds while it trains: its driver plus all of its workers."""
    return {k: resources.workers * v for k, v in worker_resources(resources).items()}


def run_trial(
    config: dict, inputs: dict[str, dict], storage_path: str, skip: frozenset[str] = frozenset()
) -> None:
    """Tune's function trainable; config["trial"] is a trial key, inputs[key] the plan's
    `Trial` (with its parsed config), its data in the object store and its FLOPs per image.

    `skip`: trial keys whose MLflow runs finished although Tune's snapshot predates it (a resume
    after the driver was killed): they are not trained again."""
    trial = inputs[config["trial"]]["trial"]
    if trial.key in skip:
        return
    for name, value in POLL_ENV.items():  # Train passes it on to its controller and workers
        os.environ.setdefault(name, value)
    started_at = time.time()  # the workers report their start-up from here (`startup_s`)
    cfg = trial.config
    trial_id = ray.tune.get_context().get_trial_id()
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={
            "config": cfg,
            "data": inputs[trial.key]["data"],
            "train_folder": inputs[trial.key]["train_folder"],  # set where it is streamed
            "started_at": started_at,
            "flops_per_image": inputs[trial.key]["flops_per_image"],
        },
        scaling_config=scaling_config(cfg.resources, trial.node),
        run_config=ray.train.RunConfig(
            name=f"train-trial_id={trial_id}",  # no timestamp: restore finds it by name
            storage_path=storage_path,
            callbacks=[TuneReportCallback()],
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=1),
            failure_config=ray.train.FailureConfig(max_failures=cfg.train.max_failures),
            # a lower CPU instruction set is read when a worker process loads torch
            worker_runtime_env={"env_vars": hardware.isa_env(cfg.resources.cpu_isa)},
        ),
    )
    trainer.fit()


def trainable(inputs: dict[str, dict], storage_path: str, skip: frozenset[str] = frozenset()):
    fn = ray.tune.with_parameters(run_trial, inputs=inputs, storage_path=storage_path, skip=skip)
    return ray.tune.with_resources(fn, DRIVER_RESOURCES)
