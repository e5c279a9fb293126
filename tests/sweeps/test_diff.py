"""`make diff` on sweeps in a real (SQLite) MLflow store: values aligned, the change per value
(paired where the seeds match), and what differs between the sweeps. No Ray."""

import pytest

from sweeps.publish.diff import diff
from sweeps.publish.records import resolve
from sweeps.publish.summary import rebuild
from tests.sweeps.test_publish import fake_sweep
from trainers import tracking


def test_diff_aligns_values_pairs_seeds_and_names_the_changed_setting(workspace):
    fake_sweep("pair-a", {"vq": [0.020, 0.021, 0.022], "ffn": [0.010, 0.011]}, {"train.lr": 3e-4})
    fake_sweep("pair-b", {"vq": [0.030, 0.031, 0.033], "smvq": [0.012]}, {"train.lr": 1e-3})
    assert (resolve("previous"), resolve("latest")) == ("pair-a", "pair-b")
    text, path = diff("previous", "latest")
    assert text.startswith("### pair-a -> pair-b: change in test loss")
    # vq: seeds 0-2 in both, changes +0.010, +0.010, +0.011: paired, clearly higher
    assert "| vq | 0.0210 (3) | 0.0313 (3) | +0.0103 [" in text
    assert "| paired (3 seeds) | higher | same |" in text
    assert "| ffn | 0.0105 (2) | – (0) | – | - | - |" in text  # only in A
    assert "| smvq | – (0) | 0.0120 (1) | – | - | - |" in text  # only in B
    assert "- base config `train.lr`: 0.0003 -> 0.001" in text
    assert path.read_text() == text
    [b] = tracking.sweep_runs("pair-b", "sweep")
    assert "diff.md" in {a.path for a in tracking.client().list_artifacts(b.info.run_id)}


def test_diff_without_common_seeds_uses_welch_and_says_nothing_else_changed(workspace):
    fake_sweep("x", {"vq": [0.020, 0.022]}, {"train.lr": 3e-4})
    fake_sweep("y", {"vq": [0.021, 0.023]}, {"train.lr": 3e-4})
    for run in tracking.sweep_runs("y"):  # the same value at other seeds (FIRST_SEED=2)
        tracking.set_tags(run.info.run_id, {"ovat.seed": int(run.data.tags["ovat.seed"]) + 2})
    text, _ = diff("x", "y")
    assert "| Welch | within noise |" in text
    assert "- nothing recorded: same config, code, data and versions" in text


def test_a_repeated_seed_is_named_and_the_legend_says_what_a_paired_change_is(workspace):
    fake_sweep("r1", {"vq": [0.020, 0.021, 0.022]})
    fake_sweep("r2", {"vq": [0.030, 0.031, 0.032, 0.040]})
    [*_, last] = tracking.sweep_runs("r2")  # its fourth trial reran seed 0
    tracking.set_tags(last.info.run_id, {"ovat.seed": 0})
    text, _ = diff("r1", "r2")
    assert "- B ran vq's seed 0 more than once: the diff keeps the newest finished run" in text
    assert "the mean of the per-seed changes B - A over those k seeds" in text


def test_pooling_sweeps_of_other_code_is_a_warning_naming_the_difference(workspace, capsys):
    fake_sweep("c1", {"vq": [0.020, 0.021]})
    fake_sweep("c2", {"vq": [0.022, 0.023]})
    for run in tracking.sweep_runs("c2"):
        tracking.set_tags(run.info.run_id, {"mlflow.source.git.commit": "0" * 40})
    rebuild("c1,c2")
    err = capsys.readouterr().err
    assert "ovat: warning: pooled sweeps differ: c1 vs c2: code (git commit): " in err
    assert "-> " + "0" * 40 in err


def test_an_unknown_or_missing_sweep_is_a_clear_error(workspace):
    from sweeps.errors import UnknownSweep

    with pytest.raises(UnknownSweep, match="no previous sweep"):
        resolve("previous")


def test_a_hardware_kind_change_is_a_difference_and_pooled_kinds_are_named(workspace, capsys):
    fake_sweep("k1", {"vq": [0.020, 0.021], "ffn": [0.030, 0.031]})
    fake_sweep("k2", {"vq": [0.022, 0.023], "ffn": [0.032, 0.033]})
    epyc, xeon = "AMD EPYC / ATen AVX2 / oneDNN AVX2", "Intel Xeon / ATen AVX512 / oneDNN AVX-512"
    for sweep, kind in (("k1", epyc), ("k2", xeon)):
        for run in tracking.sweep_runs(sweep):
            tracking.set_tags(run.info.run_id, {"placement.hardware_kind": kind})
    text, _ = diff("k1", "k2")
    assert f"- hardware kind: {epyc} -> {xeon}" in text
    capsys.readouterr()
    table = rebuild("k1,k2").markdown
    err = capsys.readouterr().err
    assert f"hardware kind: {epyc} -> {xeon}" in err  # pooled sweeps of other kinds
    line = f"The trials ran on 2 hardware kinds: {epyc} (4), {xeon} (4)."
    assert line in table and f"ovat: warning: {line}" in err
    assert "hardware kinds" not in rebuild("k1").markdown  # one kind: nothing to say


def test_latest_and_previous_are_scoped_to_an_ablation_where_one_is_given(workspace, capsys):
    from sweeps.cli import main
    from sweeps.errors import UnknownSweep

    for sweep, ablation in (("b1", "bottleneck"), ("r1", "residual"), ("b2", "bottleneck")):
        fake_sweep(sweep, {"vq": [0.020, 0.021]}, ablation=ablation)
    fake_sweep("r2", {"vq": [0.022, 0.023]}, ablation="residual")
    assert (resolve("latest"), resolve("previous")) == ("r2", "b2")  # any ablation
    assert resolve("latest", "bottleneck") == "b2" and resolve("previous", "bottleneck") == "b1"
    assert rebuild("latest", "bottleneck").sweep_id == "b2"
    assert diff("previous", "latest", "residual")[0].startswith("### r1 -> r2:")
    with pytest.raises(UnknownSweep, match="no sweep 'latest' of ablation 'placement'"):
        rebuild("latest", "placement")
    with pytest.raises(UnknownSweep, match="ABLATION='x/../..' is not an ablation name"):
        resolve("latest", "x/../..")
    capsys.readouterr()
    assert main(["rank", "--ablation", "bottleneck"]) == 0
    assert "### b2: test loss by bottleneck" in capsys.readouterr().out


def test_make_scopes_latest_only_to_an_ablation_the_user_named():
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]

    def dry(*args: str, env: dict | None = None) -> str:
        import os

        environ = {k: v for k, v in os.environ.items() if k != "ABLATION"}
        done = subprocess.run(
            ["make", "-n", "-W", "pyproject.toml", "-o", "setup", *args],
            cwd=root,
            env={**environ, **(env or {})},
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    assert "--ablation" not in dry("rank")  # ABLATION's default names what `make sweep` runs
    assert "rank latest --ablation residual" in dry("rank", "ABLATION=residual")
    assert "--ablation residual" in dry("diff", env={"ABLATION": "residual"})
