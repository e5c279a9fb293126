"""Where a trial ran, for the placement-instability probe: node, device, library versions."""

import os
import platform
import time
from pathlib import Path

import ray
import torch

from trainers import hardware, keys


def nvidia_driver_version() -> str:
    """The NVIDIA kernel driver's version from /proc; torch has no public call for it."""
    try:
        first = Path("/proc/driver/nvidia/version").read_text().splitlines()[0]
    except (OSError, IndexError):
        return "unknown"
    words = first.split()
    return next((w for w in words if w[:1].isdigit() and "." in w), "unknown")


def process_started_at() -> float | None:
    """Unix seconds this process started (Linux: /proc), to split a worker's start-up into its
    process being started and its imports; None where /proc does not tell."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return None
    return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))


def placement(device: torch.device, deterministic: bool) -> dict[str, str]:
    """`placement.*` tags: host, node, device and, on a GPU, which one and its software; the
    hardware facts that decide its kernels, and their summary, `placement.hardware_kind`."""
    info = {
        "host": platform.node(),
        "node_ip": ray.util.get_node_ip_address(),
        "node_id": ray.get_runtime_context().get_node_id(),
        "pid": str(os.getpid()),  # rank 0's worker process: what to look at (or kill) on a node
        "device": str(device),
        "torch": torch.__version__,
        "deterministic": str(deterministic),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info |= {
            "gpu_index": str(device.index if device.index is not None else 0),
            "gpu_driver": nvidia_driver_version(),
            "gpu_name": props.name,
            "gpu_uuid": str(getattr(props, "uuid", "")),
            "cuda": str(torch.version.cuda),
            "cudnn": str(torch.backends.cudnn.version()),
        }
    info |= hardware.facts(device)
    info["hardware_kind"] = hardware.kind(info)
    return {f"{keys.PLACEMENT}{key}": value for key, value in info.items()}
