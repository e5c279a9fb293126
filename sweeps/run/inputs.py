"""A sweep's data on the cluster: which train splits stream from disk, what each trial gets
through the object store, and whether that fits."""

import functools

import ray

from data.config import DataConfig
from data.registry import example_bytes, images_to_load, prepared_folder
from data.splits import SPLITS
from sweeps.define.plan import SweepPlan, Trial
from trainers.evaluation import EVAL_SPLITS, load_splits
from trainers.flops import train_flops_per_image
from trainers.paths import data_dir
from trainers.steps import steps_per_epoch
from trainers.streaming import streams as streams_train


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


def split_bytes(data: DataConfig, splits: tuple[str, ...] = ()) -> int:
    return images_to_load(data, data_dir(), splits) * example_bytes(data)


def streamed(data: list[DataConfig], store: float) -> frozenset[str]:
    """The data keys whose train split is streamed (data.stream: on, or auto and too large);
    each distinct variant is counted once (a layout not yet prepared is listed to count it)."""
    distinct = {data_key(d): d for d in data}
    return frozenset(
        key for key, d in distinct.items() if streams_train(d, split_bytes(d, ("train",)), store)
    )


def plan_streams(plan: SweepPlan, store: float) -> frozenset[str]:
    """The plan's streaming choice: the one its sweep started with (a resume), else decided now
    for this cluster's object store."""
    if plan.streamed is not None:
        return plan.streamed
    return streamed([t.config.data for t in plan.trials], store)


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
