"""A 2-repeat probe on CPU: same-seed reruns in separate Ray worker processes are bit-identical.

(2, not the default 3, keeps `make test` inside its budget; the README shows a 3-repeat run.)"""

import pytest

from sweeps.probe import run_probe

pytestmark = pytest.mark.integration


def test_probe_same_seed_reruns_are_identical_and_seeds_vary(in_sweep_store):
    _, client, runs, _ = in_sweep_store
    source = next(r for r in runs if r.info.run_name == "vq-sample-s0")
    text = run_probe(source.info.run_id, repeats=2)
    assert "| same-seed | 2 |" in text and "| 0 | 2/2 |" in text
    across = next(line for line in text.splitlines() if line.startswith("| across-seed | 2 |"))
    assert float(across.split("|")[4]) > 0  # a nonzero variance across seeds
    probes = [
        r
        for r in client.search_runs([e.experiment_id for e in client.search_experiments()])
        if r.data.tags.get("ovat.probe") and r.data.tags.get("ovat.role") == "trial"
    ]
    assert len(probes) == 4
    for run in probes:
        tags = run.data.tags
        assert tags["ovat.source_run"] == source.info.run_id
        assert tags["ovat.probe"] in {"same-seed", "across-seed"}
        for key in ("placement.node_ip", "placement.device", "placement.torch"):
            assert tags[key]
        assert len(tags["ovat.weights_hash"]) == 16
    same = {
        r.data.tags["ovat.weights_hash"] for r in probes if r.data.tags["ovat.probe"] == "same-seed"
    }
    assert same == {source.data.tags["ovat.weights_hash"]}  # the reruns repeat the source too
