import math

import pyarrow.parquet as pq
import pytest

from sweeps.ranking import TrialRow, rank, to_markdown, write


def row(value, seed, loss, total=100, bottleneck=10):
    return TrialRow(value, seed, f"{value}-sample-s{seed}", "FINISHED", loss, total, bottleneck)


ROWS = [
    row("vq", 0, 0.0124),
    row("vq", 1, 0.0132),
    row("vq", 2, 0.0218),
    row("ffn", 0, 0.0132, 120, 20),
    row("ffn", 1, 0.0140, 120, 20),
    row("identity", 0, math.nan),  # a trial that failed
]


def test_rank_pools_seeds_and_sorts_by_mean():
    table = rank(ROWS)
    assert [r.value for r in table] == ["ffn", "vq", "identity"]
    ffn, vq, identity = table
    assert ffn.test_loss_mean == pytest.approx(0.0136)
    assert ffn.test_loss_std == pytest.approx(0.000565685, rel=1e-5)  # stdev([.0132, .0140])
    assert vq.test_loss_mean == pytest.approx(0.015800)
    assert vq.test_loss_std == pytest.approx(0.0052115, rel=1e-4)  # sqrt(5.432e-5 / 2)
    assert (vq.n, ffn.n, identity.n, identity.failed) == (3, 2, 0, 1)
    assert math.isnan(identity.test_loss_mean)
    assert ffn.params_bottleneck == 20 and [r.rank for r in table] == [1, 2, 3]


def test_single_seed_has_no_std():
    [only] = rank([row("vq", 0, 0.01)])
    assert only.n == 1 and math.isnan(only.test_loss_std)


def test_markdown_and_parquet(tmp_path):
    table = rank(ROWS)
    text = to_markdown(table, "demo")
    assert "| 1 | ffn | 0.0136 | 0.0006 | 2 | 120 | 20 |" in text
    assert "| 3 | identity | – | – | 0 (1 failed) |" in text
    paths = write(table, tmp_path, "demo")
    parquet = pq.read_table(paths["parquet"]).to_pylist()
    assert [r["value"] for r in parquet] == ["ffn", "vq", "identity"]
    needed = {"rank", "value", "test_loss_mean", "test_loss_std", "n", "params_total"}
    assert needed | {"params_bottleneck"} <= set(parquet[0])
