import pytest

from sweeps.run.probe import (
    ACROSS,
    DETERMINISTIC,
    SAME,
    ProbeRow,
    alive_nodes,
    probe_trials,
    summarize,
)
from trainers.config import ExperimentConfig


def test_probe_reruns_the_seed_spreads_nodes_and_varies_seeds():
    cfg = ExperimentConfig().with_overrides({"train.seed": 7})
    trials = probe_trials(cfg, 3, ["10.0.0.1", "10.0.0.2"], deterministic=True)
    same = [t for t in trials if t.value == SAME]
    assert [t.seed for t in same] == [7, 7, 7] and [t.repeat for t in same] == [0, 1, 2]
    assert [t.node for t in same] == ["10.0.0.1", "10.0.0.2", "10.0.0.1"]
    assert all(t.config == cfg for t in same)
    across = [t for t in trials if t.value == ACROSS]
    assert [t.seed for t in across] == [8, 9, 10] and {t.node for t in across} == {"10.0.0.1"}
    strict = [t for t in trials if t.value == DETERMINISTIC]
    assert all(t.config.train.deterministic is True for t in strict)
    assert len({t.key for t in trials}) == 9
    assert {t.node for t in probe_trials(cfg, 2, ["10.0.0.1"], False)} == {""}  # one node: no pin


def rows(probe, losses, hashes, speed=100.0, where="10.0.0.1 cpu"):
    return [ProbeRow(probe, x, h, speed, where) for x, h in zip(losses, hashes, strict=True)]


def test_summary_counts_identical_reruns_and_compares_variances():
    table = summarize(
        rows(SAME, [0.02, 0.02, 0.02], ["a", "a", "a"])
        + rows(ACROSS, [0.02, 0.03, 0.04], ["b", "c", "d"])
        + rows(DETERMINISTIC, [0.02, 0.02, 0.02], ["a", "a", "e"], speed=80.0)
    )
    assert "| same-seed | 3 | 0.020000 | 0 | 3/3 | 100.0 |" in table
    assert "| across-seed | 3 | 0.030000 | 0.0001 | 1/3 (expected 1) | 100.0 |" in table
    assert "| same-seed-deterministic | 3 | 0.020000 | 0 | 2/3 | 80.0 |" in table
    assert "| same-seed | 10.0.0.1 cpu | 3 | 0.020000 |" in table
    assert "Deterministic mode runs at 0.80x" in table


def test_probe_needs_two_repeats(workspace):
    from sweeps.run.probe import run_probe
    from trainers.config import ConfigError

    with pytest.raises(ConfigError, match="REPEATS must be >= 2"):
        run_probe("any", 1)


def node(node_id: str, ip: str, alive: bool = True, **resources) -> dict:
    return {"NodeID": node_id, "NodeManagerAddress": ip, "Alive": alive, "Resources": resources}


def test_reruns_are_pinned_only_to_live_nodes_that_can_hold_them():
    nodes = [
        node("head", "10.0.0.1", CPU=4.0),  # a CPU-only head, as in docker/compose.yaml
        node("b", "10.0.0.2", CPU=8.0, GPU=2.0),
        node("a", "10.0.0.2", CPU=8.0, GPU=2.0),  # same IP: several nodes on one machine
        node("dead", "10.0.0.3", alive=False, CPU=8.0, GPU=2.0),
    ]
    assert alive_nodes({"CPU": 2.0, "GPU": 0.25}, nodes) == ["a", "b"]
    assert alive_nodes({"CPU": 1.0}, nodes) == ["head", "a", "b"]
