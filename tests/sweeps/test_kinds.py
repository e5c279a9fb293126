"""The probe's hardware kinds: which kinds it reaches (pure, from node facts) and the three-way
split of the spread it reports. No Ray instance."""

import math

import pytest

from sweeps.judge.kinds import gaps, spreads, to_markdown
from sweeps.run.kinds import KindTarget, accelerator, kinds_of
from sweeps.run.probe import ACROSS, SAME, check_kinds, probe_trials
from trainers.config import ConfigError, ExperimentConfig

AVX2 = {"avx", "avx2", "fma"}
AVX512 = AVX2 | {"avx512f", "avx512bw", "avx512vl", "avx512dq"}


def cpu(model: str, capability: str, flags: set[str], machine: str = "x86_64") -> dict:
    return {"model": model, "capability": capability, "flags": flags, "machine": machine}


def test_each_kind_once_natively_and_below_its_own_level_on_cpu():
    found = {
        "n1": (cpu("AMD EPYC", "AVX2", AVX2), ""),
        "n2": (cpu("AMD EPYC", "AVX2", AVX2), ""),  # same kind as n1: not rerun there
        "n3": (cpu("Intel Xeon", "AVX512", AVX512), ""),
        "n4": (cpu("Neoverse-V2", "SVE256", set(), machine="aarch64"), ""),
    }
    assert kinds_of(found, on_cpu=True) == [
        KindTarget("n1", "native", "AMD EPYC / AVX2 (native)"),
        KindTarget("n1", "default", "AMD EPYC / default"),
        KindTarget("n3", "native", "Intel Xeon / AVX512 (native)"),
        KindTarget("n3", "avx2", "Intel Xeon / avx2"),
        KindTarget("n3", "default", "Intel Xeon / default"),
        KindTarget("n4", "native", "Neoverse-V2 / SVE256 (native)"),  # no x86 levels below
    ]
    # a GPU trial: the CPU's level does not compute it; a GPU model is a kind of its own
    gpus = {
        "g1": (cpu("AMD EPYC", "AVX2", AVX2), "H100"),
        "g2": (cpu("AMD EPYC", "AVX2", AVX2), "A100"),
    }
    assert [(t.node, t.cpu_isa) for t in kinds_of(gpus, on_cpu=False)] == [
        ("g1", "native"),
        ("g2", "native"),
    ]
    # one node: nothing to pin to
    [native, lower] = kinds_of({"only": (cpu("AMD EPYC", "AVX2", AVX2), "")}, on_cpu=True)
    assert (native.node, lower.node, lower.cpu_isa) == ("", "", "default")


def test_a_node_names_its_gpu_model_by_its_accelerator_resource():
    assert accelerator({"Resources": {"CPU": 8, "GPU": 1, "accelerator_type:H100": 1}}) == "H100"
    assert accelerator({"Resources": {"CPU": 8}}) == ""


def test_probe_reruns_the_seed_repeats_times_on_each_kind_with_its_level():
    cfg = ExperimentConfig().with_overrides({"train.seed": 3})
    kinds = [KindTarget("", "native", "a"), KindTarget("", "default", "b")]
    trials = probe_trials(cfg, 2, ["n1"], False, kinds)
    same = [t for t in trials if t.value == SAME]
    assert [(t.repeat, t.config.resources.cpu_isa) for t in same] == [
        (0, "native"),
        (1, "native"),
        (2, "default"),
        (3, "default"),
    ]
    assert {t.seed for t in same} == {3} and len({t.key for t in trials}) == len(trials) == 6
    assert all(t.config.resources.cpu_isa == "native" for t in trials if t.value == ACROSS)


def test_the_spread_splits_three_ways():
    found = spreads(
        [("avx2", 0.0260), ("avx2", 0.0260), ("default", 0.0262), ("default", 0.0262)],
        [("avx2", 0.0250), ("avx2", 0.0290)],
    )
    assert found.within_kind == 0.0
    assert found.across_kinds == pytest.approx(0.0002)
    assert found.across_seeds == pytest.approx(0.0040)  # 0.0250 .. 0.0290, the probed 0.0260
    assert list(found.kinds) == ["avx2", "default"]
    one = spreads([("avx2", 0.026), ("avx2", 0.027)], [("avx2", 0.03)])
    assert one.within_kind == pytest.approx(0.001) and math.isnan(one.across_kinds)


def test_the_report_names_the_gaps_the_hardware_could_close():
    found = spreads([("a", 0.0260), ("b", 0.0263)], [("a", 0.0300)])
    sweep = gaps({"vq": [0.020, 0.022], "ffn": [0.0212], "amvq": [0.030], "broken": [math.nan]})
    assert [(a, b) for a, b, _ in sweep] == [("vq", "ffn"), ("ffn", "amvq")]
    text = to_markdown(found, sweep)
    assert "| same seed, same kind | 0 |" in text
    assert "| same seed, across kinds | 0.0003 |" in text
    assert "| a | 1 | 0.026000 | 0 |" in text
    assert "smaller than the spread across kinds (0.0003): 1 of 2: vq vs ffn (0.0002)." in text
    alone = to_markdown(spreads([("a", 0.026)], []), sweep)
    assert "One hardware kind was reachable" in alone


def test_kinds_takes_auto_or_none():
    check_kinds("auto")
    with pytest.raises(ConfigError, match="KINDS must be one of none, auto, got 'all'"):
        check_kinds("all")
