"""`make bench-nodes`' arithmetic on made-up trial times (the cluster run itself is by hand)."""

import os
import subprocess
import sys
import time

import pytest

from bench.__main__ import main
from bench.nodes import NodeRun, children, idle_while_waiting, node_rows
from bench.scheduling import TrialTimes


def trial(start: float, end: float, node: str) -> TrialTimes:
    return TrialTimes(start, end, 0.0, node=node)


def test_a_slot_left_empty_while_a_trial_waits_is_counted_and_the_tail_is_not():
    # two slots; the third trial starts 3 s after the first ended (3 idle slot-seconds while it
    # waited); after the last start, slots emptying as trials finish is no one waiting: not counted
    times = [trial(0, 10, "a"), trial(0, 20, "b"), trial(13, 30, "a"), trial(20, 25, "b")]
    idle, span = idle_while_waiting(times, 2)
    assert idle == pytest.approx(3.0)
    assert span == pytest.approx(2 * 20)
    packed = [trial(0, 10, "a"), trial(0, 10, "b"), trial(10, 20, "a"), trial(10, 20, "b")]
    assert idle_while_waiting(packed, 2) == (0.0, 2 * 10)


def test_the_rows_say_which_nodes_ran_nothing_and_how_far_the_cores_stretched_trials():
    times = [trial(0, 10, "a"), trial(0, 10, "a"), trial(10, 20, "a")]
    drivers, gib = {"head": 2, "node1": 1, "node2": 0}, {"head": 3.0, "node1": 1.5, "node2": 0}
    rows = node_rows(NodeRun(times, {"a", "b"}, 5.0, 1.5, drivers, gib))
    used, idle, packing, head = rows
    assert used.value == 0.5 and not used.meets
    assert used.detail == {"trials_per_node_min": 0, "trials_per_node_max": 3}
    assert idle.value == pytest.approx(0.0)  # two ran at once until the last start
    assert packing.value == pytest.approx(20 * 2 / 30)
    assert packing.detail["cores_stretch_x"] == pytest.approx(2.0)  # 10 s each against 5 alone
    assert packing.detail["makespan_uncontended_ideal_x"] == pytest.approx(20 * 2 / 15)
    assert head.value == 2 and not head.meets  # two trials' drivers on one node at once
    assert head.detail == {
        "head_drivers": 2,
        "nodes_with_drivers": 2,
        "busiest_node_driver_gib": 3.0,
        "driver_side_gib_per_trial": 1.5,
    }


def test_a_raylets_children_are_found_with_their_title_and_memory():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        deadline = time.monotonic() + 10
        while not (found := [c for c in children(os.getpid()) if c[0] == sys.executable]):
            assert time.monotonic() < deadline, children(os.getpid())
            time.sleep(0.1)
        [(_, rss)] = found
        assert 1 < rss < 500  # MiB: a bare Python interpreter
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize("nodes", [1, 17])
def test_a_node_count_out_of_range_is_refused_with_the_range(nodes, capsys):
    with pytest.raises(SystemExit) as ended:
        main(["nodes", "--nodes", str(nodes)])
    assert ended.value.code == 2
    assert f"--nodes must be 2..16, got {nodes}" in capsys.readouterr().err


def test_more_nodes_than_this_machines_memory_holds_are_refused_before_any_start(monkeypatch):
    from bench import nodes

    monkeypatch.setattr(nodes, "meminfo_gib", lambda: {"MemAvailable": 10.0, "MemTotal": 24.0})
    with pytest.raises(SystemExit) as refused:
        nodes.run_nodes(8, 16)
    assert str(refused.value) == (
        "bench.nodes: 8 nodes need about 17 GiB of memory (2.1 GiB each while their trials "
        "run); 10.0 GiB are available here: NODES=4 at most"
    )
    assert not os.environ.get("RAY_ADDRESS")  # nothing was started
