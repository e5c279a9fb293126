"""Many nodes on one machine: a Ray cluster of NODES worker nodes started on loopback, each with
one `fake_gpu` (a custom resource standing in for a GPU, as `make test-cluster` does with two),
and a sweep of tiny trials packed across them, one trial per fake GPU.

What it shows is the scheduling, not the speed: every node receives trials, no slot stays idle
while trials wait, and the makespan against perfect packing. All nodes share this machine's
cores, so each trial runs slower than alone; a one-trial sweep on the same cluster first
measures a trial alone, and the packing row says by how much the cores stretched the trials.
"""

import itertools
import os
import threading
from dataclasses import dataclass, field
from typing import Self

from bench.rows import Row
from bench.scheduling import TINY, TrialTimes, load_ablation, span_and_busy, trial_times
from bench.servers import processes, rss_mib, title
from sweeps.define import ablation as ablations

MIB = 2**20
STAND_IN = "fake_gpu"
NODE_CPUS = 1  # each node's own: the trial's worker takes half, its Ray Data reads none
TRIAL = TINY | {
    "resources.cpus_per_worker": 0.5,
    "resources.gpus_per_worker": 1.0,  # one trial per node at a time
    "resources.gpu_stand_in": STAND_IN,
}


def idle_while_waiting(times: list[TrialTimes], slots: int) -> tuple[float, float]:
    """Slot-seconds no trial held while some trial still waited to start (from the first start
    to the last), and that span in slot-seconds: their ratio is 0 for perfect scheduling."""
    first, last_start = min(t.start for t in times), max(t.start for t in times)
    span = last_start - first
    if span <= 0:
        return 0.0, 0.0
    edges = sorted({first, last_start} | {t.start for t in times} | {t.end for t in times})
    edges = [e for e in edges if first <= e <= last_start]
    idle = 0.0
    for left, right in itertools.pairwise(edges):
        running = sum(1 for t in times if t.start <= left and t.end > left)
        idle += max(0, slots - running) * (right - left)
    return idle, slots * span


@dataclass(frozen=True)
class NodeRun:
    times: list[TrialTimes]
    nodes: set[str]  # the worker nodes' ids
    solo_s: float  # one trial alone on the same cluster, Tune start to complete
    memory_added_gib: float  # the machine's memory in use at its peak, over that before the nodes
    drivers: dict = field(default_factory=dict)  # node name -> the most trial actors on it
    driver_gib: dict = field(default_factory=dict)  # node name -> the most their side held


def node_rows(run: NodeRun) -> list[Row]:
    times, slots = run.times, len(run.nodes)
    makespan, busy = span_and_busy(times)
    per_node = [sum(1 for t in times if t.node == node) for node in run.nodes]
    idle, span = idle_while_waiting(times, slots)
    used = {t.node for t in times} & run.nodes
    return [
        Row(
            f"many nodes: nodes that ran trials, {slots} nodes",
            len(used) / slots,
            1.0,
            True,
            f"every worker node ({len(times)} trials, one per node at a time)",
            {"trials_per_node_min": min(per_node), "trials_per_node_max": max(per_node)},
        ),
        Row(
            f"many nodes: idle slots while trials waited, {slots} nodes",
            idle / span if span else 0.0,
            0.05,
            False,
            "slot-seconds from the first trial's start to the last one's",
            {"idle_slot_s": idle, "span_slot_s": span},
        ),
        Row(
            f"many nodes: makespan / ideal, {slots} nodes",
            makespan * slots / busy,
            1.2,
            False,
            "sum of trial durations / nodes",
            {
                "makespan_s": makespan,
                "mean_trial_s": busy / len(times),
                "solo_trial_s": run.solo_s,
                # what sharing this machine's cores cost each trial: 1 on a real cluster
                "cores_stretch_x": busy / len(times) / run.solo_s,
                "makespan_uncontended_ideal_x": makespan * slots / (len(times) * run.solo_s),
                "memory_added_gib": run.memory_added_gib,
            },
        ),
        Row(  # Tune's trial actors ask for no CPU: Ray may keep them on any node
            f"many nodes: trial drivers on the busiest node, {slots} nodes",
            max(run.drivers.values(), default=0),
            1.0,
            False,
            "one: a node runs one trial at a time here, its driver beside it or elsewhere",
            driver_detail(run),
        ),
    ]


def driver_detail(run: NodeRun) -> dict:
    """Where the trials' drivers (Tune's trial actors, Train's controllers and queues) ran, and
    what each trial's driver side held in memory."""
    busiest = max(run.drivers, key=run.drivers.get, default="head")
    per_trial = run.driver_gib.get(busiest, 0.0) / max(run.drivers.get(busiest, 0), 1)
    return {
        "head_drivers": run.drivers.get("head", 0),
        "nodes_with_drivers": sum(1 for count in run.drivers.values() if count),
        "busiest_node_driver_gib": run.driver_gib.get(busiest, 0.0),
        "driver_side_gib_per_trial": per_trial,
    }


class MemoryPeak:
    """Sampled every second: the machine's memory in use (MemTotal - MemAvailable) at its peak,
    and on each node (its raylet's children) the trials' driver side: Tune's trial actors and
    what Train starts beside them, which follow the trial actor's node, not its workers'."""

    def __init__(self, raylets: dict[str, int]) -> None:
        self.raylets = raylets  # node name -> its raylet's pid
        self.peak = 0.0
        self.drivers = dict.fromkeys(raylets, 0)  # node -> the most trial actors it held
        self.driver_gib = dict.fromkeys(raylets, 0.0)  # node -> the most their side held
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()

    def sample(self) -> None:
        while True:
            self.peak = max(self.peak, memory_in_use_gib())
            table = processes()  # one pass over /proc for every node
            for node, raylet in self.raylets.items():
                held = [(n, rss) for n, rss in children(raylet, table) if n in TRIAL_PROCESSES]
                actors = sum(1 for n, _ in held if n == TRIAL_PROCESSES[0])
                self.drivers[node] = max(self.drivers[node], actors)
                gib = sum(rss for _, rss in held) / 1024
                self.driver_gib[node] = max(self.driver_gib[node], gib)
            if self.stop.wait(1.0):
                return


# Ray's process titles of what runs a trial's driver side: Tune's function trainable, Train's
# controller and its queue (measured here: about 0.86, 0.79 and 0.13 GiB each)
TRIAL_PROCESSES = ("ray::ImplicitFunc", "ray::TrainController", "ray::_QueueActor")


def children(parent: int, table: dict[int, tuple[int, float]] | None = None) -> list:
    """(`title`, resident MiB) of each child; `table`: `processes()` read once for several
    parents."""
    found = []
    for pid, (ppid, _) in (processes() if table is None else table).items():
        if ppid != parent:
            continue
        try:
            found.append((title(pid), rss_mib(pid)))
        except (OSError, ValueError):
            continue  # gone meanwhile
    return found


def meminfo_gib() -> dict[str, float]:
    with open("/proc/meminfo") as file:
        return {
            name: int(rest.split()[0]) / 2**20
            for name, rest in (line.split(":", 1) for line in file)
        }


def memory_in_use_gib() -> float:
    info = meminfo_gib()
    return info["MemTotal"] - info["MemAvailable"]


# Memory one node adds while its trial runs: the trial's worker on the node and its driver side
# on the head (measured with NODES=8: 16.4 GiB in all)
GIB_PER_NODE = 2.1


def check_memory(nodes: int) -> None:
    """Refuse a cluster this machine cannot hold, before starting it (an out-of-memory kill
    halfway through a run tells less)."""
    available = meminfo_gib()["MemAvailable"]
    if nodes * GIB_PER_NODE > available:
        most = int(available // GIB_PER_NODE)
        raise SystemExit(
            f"bench.nodes: {nodes} nodes need about {nodes * GIB_PER_NODE:.0f} GiB of memory "
            f"({GIB_PER_NODE} GiB each while their trials run); {available:.1f} GiB are available "
            f"here: NODES={most} at most"
        )


def sweep(name: str, trials: int) -> list[TrialTimes]:
    from sweeps.run.tuner import run_plan

    plan = ablations.plan(load_ablation(trials), TRIAL)
    published = run_plan(plan)
    counted = sum(row.n for row in published.ranking)
    if counted != trials:
        raise SystemExit(f"bench.nodes: the ranking counted {counted} of {trials} trials")
    print(f"bench.nodes: {name}: {trials} trials done")
    return trial_times(published.sweep_id)


def run_nodes(nodes: int, trials: int) -> list[Row]:
    """Start the cluster, time one trial alone, then the sweep; the cluster is shut down after."""
    import ray
    from ray.cluster_utils import Cluster

    check_memory(nodes)
    before = memory_in_use_gib()
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "object_store_memory": 150 * MIB}
    )
    try:
        workers = [
            cluster.add_node(
                num_cpus=NODE_CPUS, resources={STAND_IN: 1}, object_store_memory=100 * MIB
            )
            for _ in range(nodes)
        ]
        cluster.wait_for_nodes()
        print(f"bench.nodes: a head and {nodes} worker nodes up at {cluster.address}")
        os.environ["RAY_ADDRESS"] = cluster.address
        from sweeps.run.cluster import ensure_ray

        ensure_ray()
        raylet = lambda node: node.all_processes["raylet"][0].process.pid
        raylets = {"head": raylet(cluster.head_node)}
        raylets |= {f"node{i + 1}": raylet(w) for i, w in enumerate(workers)}
        with MemoryPeak(raylets) as memory:
            [solo] = sweep("alone", 1)
            times = sweep("packed", trials)
        nodes_ids = {w.node_id for w in workers}
        added = memory.peak - before
        return node_rows(
            NodeRun(times, nodes_ids, solo.duration, added, memory.drivers, memory.driver_gib)
        )
    finally:
        ray.shutdown()
        cluster.shutdown()
        os.environ.pop("RAY_ADDRESS", None)
