import math
import re

import pyarrow.parquet as pq
import pytest

from sweeps.judge.racing import SEPARATED, TIED, Rule
from sweeps.judge.ranking import TrialRow, rank
from sweeps.judge.table import to_markdown
from sweeps.publish.files import write


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
    table = rank(ROWS, baseline="vq")
    assert [r.value for r in table] == ["ffn", "vq", "identity"]
    ffn, vq, identity = table
    assert ffn.test_loss_mean == pytest.approx(0.0136)
    assert ffn.test_loss_std == pytest.approx(0.000565685, rel=1e-5)  # stdev([.0132, .0140])
    assert vq.test_loss_mean == pytest.approx(0.015800)
    assert vq.test_loss_std == pytest.approx(0.0052115, rel=1e-4)  # sqrt(5.432e-5 / 2)
    assert (vq.n, ffn.n, identity.n, identity.failed) == (3, 2, 0, 1)
    assert math.isnan(identity.test_loss_mean)
    assert ffn.params_bottleneck == 20 and [r.rank for r in table] == [1, 2, 3]
    assert (vq.test_loss_min, vq.test_loss_max) == (0.0124, 0.0218)


def test_difference_to_baseline_has_welch_interval_and_verdict():
    ffn, vq, identity = rank(ROWS, baseline="vq")
    # by hand: var(ffn)/2 = 1.6e-7, var(vq)/3 = 9.0533e-6, se = 0.0030353,
    # Welch df = (9.2133e-6)^2 / ((1.6e-7)^2 / 1 + (9.0533e-6)^2 / 2) = 2.070, t(0.975, 2.07) = 4.166
    assert ffn.diff_to_baseline == pytest.approx(0.0136 - 0.0158)
    half = 4.166 * 0.0030353
    assert ffn.diff_ci_low == pytest.approx(-0.0022 - half, abs=2e-5)
    assert ffn.diff_ci_high == pytest.approx(-0.0022 + half, abs=2e-5)
    assert ffn.verdict == "within noise"
    assert vq.verdict == "baseline" and identity.verdict == "–"


@pytest.mark.parametrize(
    ("losses", "verdict"),
    [
        ([0.010, 0.011, 0.012], "better"),
        ([0.030, 0.031, 0.032], "worse"),
        ([0.019, 0.021, 0.020], "within noise"),
        ([0.010], "n < 2"),
    ],
)
def test_verdicts(losses, verdict):
    rows = [row("base", s, x) for s, x in enumerate([0.020, 0.0205, 0.0195])]
    rows += [row("new", s, x) for s, x in enumerate(losses)]
    table = {r.value: r for r in rank(rows, baseline="base")}
    assert table["new"].verdict == verdict


def test_single_seed_has_no_std():
    [only] = rank([row("vq", 0, 0.01)])
    assert only.n == 1 and math.isnan(only.test_loss_std)


def test_markdown_and_parquet(tmp_path):
    table = rank(ROWS, baseline="vq")
    text = to_markdown(table, "demo")
    assert (
        "| 1 | ffn | 0.0136 | 0.0006 | 0.0132 | 0.0140 | – | 2 | -0.0022 [-0.0148, +0.0104] |"
        in text
    )
    assert re.search(r"\| within noise \| 0\.\d\d \| 1-2 ≈best \| 120 \| 20 \|", text)
    assert "| 3 | identity | – | – | – | – | – | 0 (1 failed) | – | – |" in text
    paths = write(table, tmp_path, "demo")
    parquet = pq.read_table(paths["parquet"]).to_pylist()
    assert [r["value"] for r in parquet] == ["ffn", "vq", "identity"]
    needed = {"rank", "value", "test_loss_mean", "test_loss_std", "n", "params_total"}
    assert needed | {"params_bottleneck", "verdict", "diff_ci_low"} <= set(parquet[0])
    assert {"p_best", "rank_low", "rank_high", "tied_with_best"} <= set(parquet[0])
    assert parquet[0]["p_best"] + parquet[1]["p_best"] == 1.0  # identity never finished


def test_failed_trials_are_counted_with_their_reason_not_dropped():
    diverged = TrialRow("ffn", 2, "ffn-sample-s2", "FAILED", math.nan, 120, 20,
                        error="diverged at epoch 1, step 2: training loss is not finite")  # fmt: skip
    table = {r.value: r for r in rank([*ROWS, diverged], baseline="vq")}
    assert (table["ffn"].n, table["ffn"].failed) == (2, 1)
    assert "s2 failed: diverged at epoch 1, step 2" in table["ffn"].notes
    assert "| 2 (1 failed) |" in to_markdown(list(table.values()), "t")


def test_a_raced_sweep_ranks_the_seeds_its_race_counted_with_the_races_verdicts():
    base = [0.030, 0.031, 0.029, 0.0305, 0.0295, 0.0302]
    rows = [row("base", s, x) for s, x in enumerate(base)]
    rows += [row("twin", s, x) for s, x in enumerate(base)]  # a logging-only change
    rows += [row("lr0", s, x) for s, x in enumerate([0.25, 0.27, 0.24, 0.26])]  # s3 speculative
    table = {r.value: r for r in rank(rows, baseline="base", rule=Rule(3, 6))}
    lr0, twin = table["lr0"], table["twin"]
    assert (lr0.decision, lr0.decided_at, lr0.n, lr0.seeds_run) == (SEPARATED, 3, 3, 4)
    assert lr0.test_loss_mean == pytest.approx(0.2533, abs=1e-4)  # seeds 0-2 only
    assert lr0.verdict == "worse" and not lr0.tied_with_best
    assert (twin.decision, twin.n, twin.verdict, twin.tied_with_best) == (
        TIED,
        6,
        "within noise",
        True,
    )
    assert twin.diff_ci_low <= 0 <= twin.diff_ci_high
    text = to_markdown(list(table.values()), "raced")
    assert "| 3 (+1 not counted) |" in text and "| separated at 3 |" in text
    assert "Seeds were run until decided" in text


def test_a_table_says_when_its_trials_ran_on_several_hardware_kinds():
    from sweeps.judge.ranking import kinds_text

    rows = [
        TrialRow("vq", s, f"vq-s{s}", "FINISHED", 0.02, 10, 1, hardware_kind=kind)
        for s, kind in enumerate(["A", "A", "B"])
    ]
    assert kinds_text(rows) == (
        "The trials ran on 2 hardware kinds: A (2), B (1). The same seed moves between "
        "kinds; `make probe RUN=<trial> KINDS=auto` measures by how much (docs/ranking.md)."
    )
    assert kinds_text(rows[:2]) == ""
    assert kinds_text([TrialRow("vq", 0, "r", "FINISHED", 0.02, 10, 1)]) == ""  # not recorded


def test_a_language_models_table_adds_bits_per_byte_beside_its_nats():
    from sweeps.judge.ranking import in_bits_per_byte
    from sweeps.judge.table import summary_markdown

    rows = [row("ffn", s, loss) for s, loss in enumerate([2.5, 2.6])]
    rows += [row("softvq", s, loss) for s, loss in enumerate([2.7, 2.8])]
    table = rank(rows, "ffn")
    assert "bits/byte" not in to_markdown(table, "images")  # the autoencoder's tables
    in_bits = in_bits_per_byte(table)
    assert [r.test_bits_per_byte for r in in_bits] == pytest.approx([2.55 / math.log(2),
                                                                     2.75 / math.log(2)])  # fmt: skip
    header, _, first = to_markdown(in_bits, "text").splitlines()[2:5]
    assert "| ± std | bits/byte | min |" in header
    assert f"| {2.55 / math.log(2):.4f} |" in first
    assert "| bits/byte |" in summary_markdown(in_bits, "text").splitlines()[2]
