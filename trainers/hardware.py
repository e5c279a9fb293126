"""The hardware kind a trial computes on, and the CPU instruction set it may be held to.

A rerun of the same seed repeats a trial bit for bit only on the same kind: the same CPU
instruction set that PyTorch's and oneDNN's kernels dispatch to (AVX-512, AVX2 and SSE kernels
sum in other orders), the same GPU model, and the same library versions and precision settings.
Every trial records its kind (`placement.*` tags, summed up in one `placement.hardware_kind`),
so a ranking can say when its trials ran on several, and the probe (`KINDS=auto`) can rerun a
seed on every kind it can reach, including the instruction sets below a CPU's own
(`resources.cpu_isa`), which `isa_env` forces per trial through the environment its worker
processes start with.
"""

import functools
import os
import platform
import re
import tempfile
from pathlib import Path

from trainers.config import CPU_ISAS, ConfigError

# What `resources.cpu_isa` sets in a trial's worker processes: ATen's kernel dispatch and
# oneDNN's ceiling (both read once, when the process loads torch).
ISA_ENV = {
    "avx512": {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "default": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"},
}
# The /proc/cpuinfo flags each level needs (ATen's own test). ATen reports the level it is told
# even where the CPU lacks it, so ovat checks the flags itself before a trial starts.
ISA_FLAGS = {
    "avx512": {"avx512f", "avx512bw", "avx512vl", "avx512dq"},
    "avx2": {"avx2", "fma"},
    "default": set(),
}
# How oneDNN's verbose line names each level (`onednn_isa`).
ONEDNN_NAMES = {"avx512": "AVX-512", "avx2": "AVX2", "default": "SSE4.1"}
X86 = {"x86_64", "amd64", "i686", "i386"}


def isa_env(cpu_isa: str) -> dict[str, str]:
    """The environment a trial's workers start with: empty for `native`."""
    return dict(ISA_ENV.get(cpu_isa, {}))


def cpuinfo() -> dict[str, str]:
    """The first processor's fields in /proc/cpuinfo (Linux), else nothing."""
    try:
        block = Path("/proc/cpuinfo").read_text().split("\n\n", 1)[0]
    except OSError:
        return {}
    fields = (line.split(":", 1) for line in block.splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, value in fields}


def cpu_model(info: dict[str, str] | None = None) -> str:
    info = cpuinfo() if info is None else info
    return info.get("model name") or platform.processor() or platform.machine() or "unknown CPU"


def runnable_isas(machine: str, flags: set[str]) -> list[str]:
    """The `resources.cpu_isa` levels a CPU can run, highest first (none but `native` off x86)."""
    if machine.lower() not in X86:
        return []
    return [isa for isa in CPU_ISAS if isa in ISA_FLAGS and ISA_FLAGS[isa] <= flags]


def lower_isas(machine: str, flags: set[str], native_capability: str) -> list[str]:
    """The levels below the one this CPU dispatches to by itself (`get_cpu_capability()`)."""
    runnable = runnable_isas(machine, flags)
    native = native_capability.lower()
    if native not in runnable:  # e.g. AVX512 with AMX or VNNI variants: below avx512 only
        native = next((isa for isa in runnable if native.startswith(isa)), "")
    return runnable[runnable.index(native) + 1 :] if native in runnable else []


def this_cpu() -> dict[str, object]:
    """This machine's CPU: model, architecture, flags."""
    info = cpuinfo()
    return {
        "model": cpu_model(info),
        "machine": platform.machine(),
        "flags": set(info.get("flags", "").split()),
    }


@functools.cache
def onednn_isa() -> str:
    """The instruction set oneDNN dispatches to in this process, as its verbose mode prints it
    (torch exposes no call for it): one small convolution with fd 1 caught in a file."""
    import torch

    x, w = torch.randn(8, 64, 32, 32), torch.randn(64, 64, 3, 3)
    with tempfile.TemporaryFile() as caught:
        saved = os.dup(1)
        try:
            os.dup2(caught.fileno(), 1)
            with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
                torch.nn.functional.conv2d(x, w)
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        caught.seek(0)
        text = caught.read().decode(errors="replace")
    found = re.search(r",isa:([^\n,]+)", text)
    return found.group(1).strip() if found else "unknown"


@functools.cache
def library_versions() -> dict[str, str]:
    """MKL's and oneDNN's versions, from torch's build summary."""
    import torch

    shown = torch.__config__.show()
    mkl = re.search(r"Math Kernel Library Version ([\w.]+)", shown)
    onednn = re.search(r"MKL-DNN v([\w.]+)", shown)
    return {
        "mkl": mkl.group(1) if mkl else "none",
        "onednn": onednn.group(1) if onednn else "none",
    }


def facts(device) -> dict[str, str]:
    """What decides the kernels a trial runs: the CPU and its dispatch, and on a GPU the GPU,
    its compute capability and the precision switches that pick other kernels."""
    import torch

    found = {
        "cpu_model": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "onednn_isa": onednn_isa(),
        **library_versions(),
        "matmul_precision": torch.get_float32_matmul_precision(),
    }
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        found |= {
            "gpu_capability": f"{major}.{minor}",
            "tf32_matmul": str(torch.backends.cuda.matmul.allow_tf32),
            "tf32_cudnn": str(torch.backends.cudnn.allow_tf32),
            "cudnn_benchmark": str(torch.backends.cudnn.benchmark),
        }
    return found


def kind(found: dict[str, str]) -> str:
    """One line that groups runs which can repeat each other bit for bit. `found`: `facts`
    plus, on a GPU, the placement tags gpu_name, cuda and cudnn."""
    if "gpu_capability" in found:
        tf32 = "tf32" if found.get("tf32_matmul") == "True" else "fp32"
        return (
            f"{found.get('gpu_name', 'GPU')} sm{found['gpu_capability'].replace('.', '')}"
            f" / CUDA {found.get('cuda', '?')} cuDNN {found.get('cudnn', '?')} / {tf32}"
        )
    return (
        f"{found['cpu_model']} / ATen {found['cpu_capability']} / oneDNN "
        f"{found['onednn_isa'].removeprefix('Intel ')}"
        f" / MKL {found['mkl']}"
    )


def check_isa(cpu_isa: str, node: str = "") -> None:
    """Fail before training where `resources.cpu_isa` cannot hold: a level this CPU lacks, or
    one the worker's environment did not bring into effect."""
    if cpu_isa == "native":
        return
    import torch

    cpu = this_cpu()
    runnable = runnable_isas(str(cpu["machine"]), cpu["flags"])
    where = f" on {node}" if node else ""
    if cpu_isa not in runnable:
        raise ConfigError(
            f"resources.cpu_isa={cpu_isa} is not available{where} ({cpu['model']}, "
            f"{cpu['machine']}); it can run: native" + "".join(f", {isa}" for isa in runnable)
        )
    dispatched = torch.backends.cpu.get_cpu_capability().lower()
    if dispatched != cpu_isa:
        raise ConfigError(
            f"resources.cpu_isa={cpu_isa} did not take effect{where}: PyTorch dispatches to "
            f"{dispatched} (ATEN_CPU_CAPABILITY={os.environ.get('ATEN_CPU_CAPABILITY')!r})"
        )
    if ONEDNN_NAMES[cpu_isa] not in onednn_isa():
        raise ConfigError(
            f"resources.cpu_isa={cpu_isa} did not take effect{where}: oneDNN dispatches to "
            f"{onednn_isa()} (ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA')!r})"
        )
