"""Publishing and merging rankings from a real (SQLite) MLflow store, no Ray needed."""

import pytest

from sweeps.publish import UnknownSweep, rebuild
from trainers import tracking


def fake_sweep(sweep_id: str, losses: dict[str, list[float]], base: dict | None = None) -> None:
    """A sweep as the runner logs it: one parent run and one finished trial run per seed."""
    tags = {"ovat.sweep_id": sweep_id, "ovat.ablation": "pair", "ovat.baseline": "vq"}
    parent = tracking.start_run("ovat-pair", sweep_id, {**tags, "ovat.role": "sweep"}, base or {})
    for value, seeds in losses.items():
        for seed, loss in enumerate(seeds):
            trial_tags = {**tags, "ovat.role": "trial", "ovat.value": value, "ovat.seed": seed}
            name = f"{value}-sample-s{seed}"
            run = tracking.start_run("ovat-pair", name, trial_tags, base or {}, parent)
            tracking.log_metrics(run, {"test_loss": loss, "params_total": 10}, step=2)
            tracking.end_run(run)
    tracking.end_run(parent)


def test_rank_merges_two_sweeps_that_share_a_base(workspace):
    fake_sweep("pair-a", {"vq": [0.020, 0.021], "ffn": [0.010, 0.011]}, {"train.lr": 3e-4})
    fake_sweep("pair-b", {"vq": [0.0205], "ffn": [0.0105]}, {"train.lr": 3e-4})
    text = rebuild("pair-a,pair-b")
    assert text.startswith("### pair-a+pair-b: test loss by pair (baseline vq)")
    assert "| 1 | ffn | 0.0105 | 0.0005 | 0.0100 | 0.0110 | 3 |" in text
    assert "| better |" in text
    folder = workspace / "results" / "pair-a+pair-b"
    assert {p.name for p in folder.iterdir()} == {"ranking.md", "ranking.parquet", "test_loss.png"}
    assert (folder / "test_loss.png").read_bytes()[:4] == b"\x89PNG"
    assert rebuild("latest").startswith("### pair-b: ")  # the newest sweep run
    assert "seed 0 pooled more than once" in text  # b reran seed 0: its noise is not new seeds
    # each sweep alone still ranks on its own seeds
    assert "| 1 | ffn | 0.0105 | 0.0007 | 0.0100 | 0.0110 | 2 |" in rebuild("pair-a")
    assert (workspace / "results" / "latest").read_text() == "pair-a\n"


def test_sweeps_with_different_bases_do_not_merge(workspace):
    fake_sweep("pair-a", {"vq": [0.02]}, {"train.lr": 3e-4})
    fake_sweep("pair-c", {"vq": [0.02]}, {"train.lr": 1e-3})
    with pytest.raises(UnknownSweep, match="do not share a base: train.lr is '0.0003' vs '0.001'"):
        rebuild("pair-a,pair-c")
