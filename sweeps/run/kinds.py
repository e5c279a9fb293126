"""The hardware kinds a probe can reach: one node of each distinct kind in the cluster and, for
a trial on CPU, the x86 instruction sets below each kind's own (trainers.hardware)."""

from dataclasses import dataclass

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from trainers import hardware

ACCELERATOR = "accelerator_type:"  # the prefix of the node resource Ray names a GPU model by


@dataclass(frozen=True)
class KindTarget:
    """Where one kind's same-seed reruns go: a node ("" on a one-node cluster) and a level."""

    node: str
    cpu_isa: str  # resources.cpu_isa: native or a level below the node's own
    label: str  # what the plan calls it; the runs' placement.hardware_kind tag is the truth


@ray.remote(num_cpus=0)
def node_cpu() -> dict:
    """The CPU of the node this task runs on, and the level its torch dispatches to."""
    import torch

    return {**hardware.this_cpu(), "capability": torch.backends.cpu.get_cpu_capability()}


def accelerator(node: dict) -> str:
    """The GPU model Ray found on a node (its `accelerator_type:<model>` resource), or ""."""
    names = (r[len(ACCELERATOR) :] for r in node["Resources"] if r.startswith(ACCELERATOR))
    return next(names, "")


def kinds_of(found: dict[str, tuple[dict, str]], on_cpu: bool) -> list[KindTarget]:
    """`found`: node id -> (its `node_cpu`, its accelerator), in the probe's node order. The
    first node of each kind, natively and, on CPU, at each x86 level below its own; reruns are
    pinned to a node only where there are several."""
    pinned = len(found) > 1
    targets, seen = [], set()
    for node_id, (cpu, gpu) in found.items():
        if (cpu["model"], cpu["capability"], gpu) in seen:
            continue
        seen.add((cpu["model"], cpu["capability"], gpu))
        where = node_id if pinned else ""
        name = " ".join(filter(None, (cpu["model"], gpu)))
        targets.append(KindTarget(where, "native", f"{name} / {cpu['capability']} (native)"))
        if on_cpu:
            lower = hardware.lower_isas(cpu["machine"], cpu["flags"], cpu["capability"])
            targets += [KindTarget(where, isa, f"{name} / {isa}") for isa in lower]
    return targets


def targets(node_ids: list[str], on_cpu: bool) -> list[KindTarget]:
    """Ask each node for its CPU (a zero-CPU task pinned to it) and group the nodes by kind."""
    nodes = {n["NodeID"]: n for n in ray.nodes()}
    asked = [
        node_cpu.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False)).remote()
        for n in node_ids
    ]
    cpus = ray.get(asked)
    found = {n: (cpu, accelerator(nodes[n])) for n, cpu in zip(node_ids, cpus, strict=True)}
    return kinds_of(found, on_cpu)
