"""The Ray cluster a sweep runs on: joining it, and what it can hold at once."""

import math
import os

import ray

from data.config import DataConfig
from sweeps.define.plan import Trial
from sweeps.errors import ResourceError
from sweeps.run.inputs import copy_key, data_key, split_bytes
from trainers.evaluation import EVAL_SPLITS
from trainers.streaming import stream_cpus
from trainers.trial import trial_resources


def ensure_ray() -> None:
    """Start or join Ray."""
    if not ray.is_initialized():
        ray.init(
            address=os.environ.get("RAY_ADDRESS"),
            include_dashboard=False,
            configure_logging=False,
            log_to_driver=False,
        )


def smallest_object_store(nodes: list[dict] | None = None) -> float:
    """The object store the sweep's data must fit: the driver's `ray.put` lands on its own node
    and every node that runs a trial pulls a copy, so the smallest live node's store decides."""
    nodes = ray.nodes() if nodes is None else nodes
    stores = [n["Resources"].get("object_store_memory", 0) for n in nodes if n["Alive"]]
    return min((s for s in stores if s > 0), default=0)


def concurrency(
    trials: tuple[Trial, ...], available: dict | None = None, streams: frozenset[str] = frozenset()
) -> int:
    """How many trials fit on the cluster at once (e.g. 0.25 GPU per trial: four per GPU); an
    error naming the shortfall if one never fits. With trials of several sizes the largest
    decides: Tune's cap is one number, and it must never admit more trials than fit. A trial
    whose train split is streamed counts `stream_cpus` more, left free for its Ray Data reads
    (trials would otherwise take every CPU and starve their own input)."""
    available = ray.cluster_resources() if available is None else available
    needs = set()
    for t in trials:
        need = trial_resources(t.config.resources)
        if data_key(t.config.data) in streams:
            need["CPU"] = need.get("CPU", 0) + stream_cpus(t.config.resources.workers)
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
    train split is streamed) must fit the smallest node's object store: the driver's node holds
    the put and every node that runs a trial a copy. Said before anything is decoded, put or
    logged."""
    distinct = {copy_key(cfg, streams): cfg for cfg in data}
    need = sum(
        split_bytes(c, EVAL_SPLITS if data_key(c) in streams else ()) for c in distinct.values()
    )
    store = smallest_object_store(nodes)
    if need > store:
        cfg = next(iter(distinct.values()))
        raise ResourceError(
            f"the sweep's data ({need / 1e9:.3g} GB of uint8 pixels: {cfg.dataset} at "
            f"{cfg.resolution} px) does not fit in Ray's object store ({store / 1e9:.3g} GB on "
            "the smallest node, which holds a copy): lower RES= (data.resolution), set "
            "data.limit=<images per split>, "
            "stream the train split from disk (data.stream=on), or give the nodes more "
            "object-store memory (ray start --object-store-memory)"
        )
