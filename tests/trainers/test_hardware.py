"""The hardware kind a trial records, and the CPU level `resources.cpu_isa` holds it to: forced
through the environment a fresh process starts with, as a trial's workers are."""

import json
import os
import subprocess
import sys

import pytest

from trainers import hardware
from trainers.config import ConfigError, ExperimentConfig

AVX2 = {"avx", "avx2", "fma"}
AVX512 = AVX2 | {"avx512f", "avx512bw", "avx512vl", "avx512dq"}


def test_levels_below_a_cpus_own():
    assert hardware.runnable_isas("x86_64", AVX512) == ["avx512", "avx2", "default"]
    assert hardware.lower_isas("x86_64", AVX512, "AVX512") == ["avx2", "default"]
    assert hardware.lower_isas("x86_64", AVX2, "AVX2") == ["default"]
    assert hardware.lower_isas("x86_64", AVX2, "DEFAULT") == []
    assert hardware.lower_isas("aarch64", set(), "SVE256") == []


def test_the_level_is_a_checked_config_value_and_sets_both_libraries():
    with pytest.raises(ConfigError, match="resources.cpu_isa must be one of native, avx512"):
        ExperimentConfig().with_overrides({"resources.cpu_isa": "sse2"})
    assert hardware.isa_env("native") == {}
    assert hardware.isa_env("avx2") == {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def test_a_kind_line_groups_what_decides_the_kernels():
    cpu = {"cpu_model": "AMD EPYC", "cpu_capability": "AVX2", "onednn_isa": "Intel AVX2"}
    assert hardware.kind({**cpu, "mkl": "2024.2"}) == (
        "AMD EPYC / ATen AVX2 / oneDNN AVX2 / MKL 2024.2"
    )
    gpu = {"gpu_name": "NVIDIA H100", "gpu_capability": "9.0", "cuda": "13.0", "cudnn": "92400"}
    assert hardware.kind({**cpu, **gpu, "tf32_matmul": "False"}) == (
        "NVIDIA H100 sm90 / CUDA 13.0 cuDNN 92400 / fp32"
    )


SCRIPT = """
import json, torch
from trainers import hardware
try:
    hardware.check_isa({level!r})
    error = ""
except Exception as e:
    error = str(e)
facts = hardware.facts(torch.device("cpu"))
print(json.dumps({{"facts": facts, "kind": hardware.kind(facts), "error": error}}))
"""


def in_process(level: str, env: dict[str, str]) -> dict:
    """What a fresh process started with `env` records, and whether `level` holds in it."""
    clean = {k: v for k, v in os.environ.items() if k not in hardware.ISA_ENV["default"]}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(level=level)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_lower_level_forced_in_a_fresh_process_is_recorded_as_another_kind():
    cpu = hardware.this_cpu()
    native = in_process("native", {})
    lower = hardware.lower_isas(cpu["machine"], cpu["flags"], native["facts"]["cpu_capability"])
    if not lower:
        pytest.skip(f"{cpu['model']} ({cpu['machine']}) has no x86 level below its own to force")
    level = lower[-1]
    forced = in_process(level, hardware.isa_env(level))
    assert forced["error"] == ""  # check_isa: it took effect
    assert forced["facts"]["cpu_capability"].lower() == level
    assert hardware.ONEDNN_NAMES[level] in forced["facts"]["onednn_isa"]
    assert forced["kind"] != native["kind"]
    # asked for without the environment that forces it: refused, naming what dispatched
    unforced = in_process(level, {})
    assert f"resources.cpu_isa={level} did not take effect" in unforced["error"]


def test_a_level_the_cpu_lacks_is_refused_with_what_it_can_run():
    cpu = hardware.this_cpu()
    runnable = hardware.runnable_isas(cpu["machine"], cpu["flags"])
    missing = [isa for isa in ("avx512", "avx2") if isa not in runnable]
    if not missing:
        pytest.skip(f"{cpu['model']} runs every level")
    with pytest.raises(ConfigError, match=f"resources.cpu_isa={missing[0]} is not available"):
        hardware.check_isa(missing[0])
