"""The command line's bad-input table: one line, exit code 2, no traceback, nothing started.

The tables call `main` in this process (a subprocess costs ~6 s of imports each); the real
entry point's exit code and stderr are checked by the subprocess tests at the end.
"""

import subprocess
import sys

import pytest

from sweeps.cli import main
from tests.conftest import ROOT, free_port


def ovat(*args: str, cwd, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sweeps.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", **env},
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sweep", "botleneck"], "unknown ablation 'botleneck'; valid: bottleneck"),
        (["sweep", "bottleneck", "--epochs", "-1"], "train.epochs must be >= 1, got -1"),
        (["sweep", "bottleneck", "--set", "train.lr=abc"], "train.lr: expected float, got 'abc'"),
        (["sweep", "bottleneck", "--set", "train.batch_size=0"], "train.batch_size must be >= 1"),
        (["sweep", "bottleneck", "--set", "data.mask_ratio=1.5"], "data.mask_ratio must be in"),
        (["sweep", "bottleneck", "--dataset", "imagenot"], "unknown dataset 'imagenot'; valid"),
        (["sweep", "bottleneck", "--set", "train.lr"], "override 'train.lr' is not key=value"),
        (["sweep", "bottleneck", "--seeds", "0"], "SEEDS must be >= 1, got 0"),
        (["sweep", "bottleneck", "--seeds", "two"], "SEEDS must be an integer >= 1, got 'two'"),
        (["sweep", "bottleneck", "--first-seed", "-1"], "FIRST_SEED must be >= 0, got -1"),
        (["sweep", "bottleneck", "--repeats", "3"], "REPEATS=3 applies to probe ablations only"),
        (["sweep", "placement", "--repeats", "1"], "REPEATS must be >= 2, got 1"),
        (["sweep", "placement", "--set", "model.bottleneck=x"], "unknown model.bottleneck 'x'"),
    ],
)
def test_bad_input_is_one_clear_line(args, message, workspace, capsys):
    assert main(args) == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith("ovat: error: ") and message in stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1
    assert not (workspace / "mlflow.db").exists() and not (workspace / "results").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rank", "nope-123"], "no sweep 'nope-123'"),
        (["eval", "nope-run"], "no run 'nope-run' in sqlite:///"),
        (["eval", "x", "--splits", "holdout"], "unknown split 'holdout'; valid: train, val, test"),
        (["transplant", "x", "--bottleneck", "vqq"], "unknown bottleneck 'vqq'; valid: amvq"),
        (["finetune", "x", "--train", "a", "--steps", "-1"], "STEPS and SHOTS must be >= 0"),
        (["probe", "x", "--kinds", "all"], "KINDS must be one of none, auto, got 'all'"),
        (
            ["sweep", "bottleneck", "--set", "resources.cpu_isa=sse"],
            "must be one of native, avx512",
        ),
    ],
)
def test_follow_up_commands_reject_bad_input(args, message, workspace, capsys):
    assert main(args) == 2
    stderr = capsys.readouterr().err
    assert message in stderr and "Traceback" not in stderr


def test_the_entry_point_exits_2_with_one_line(workspace):
    result = ovat("sweep", "bottleneck", "--set", "train.lr=abc", cwd=workspace)
    assert result.returncode == 2
    assert result.stderr == "ovat: error: train.lr: expected float, got 'abc'\n"


def test_debug_shows_the_traceback(workspace):
    result = ovat("--debug", "sweep", "botleneck", cwd=workspace)
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_list_names_everything(workspace):
    result = ovat("list", cwd=workspace)
    assert result.returncode == 0
    assert "bottleneck" in result.stdout and "softvq" in result.stdout


def test_unreachable_tracking_server_is_an_error_before_anything_starts(workspace):
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = ovat("sweep", "bottleneck", cwd=workspace, MLFLOW_TRACKING_URI=uri)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"MLflow tracking server {uri} is not reachable" in result.stderr
    assert not (workspace / "results").exists()


def test_unwritable_results_folder_is_named(workspace):
    blocker = workspace / "a-file"
    blocker.write_text("not a folder")  # unwritable even for root, unlike a chmod
    results = blocker / "results"
    result = ovat("sweep", "bottleneck", cwd=workspace, OVAT_RESULTS=str(results))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"results folder {results} is not writable: Not a directory" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["prepare", "imagenet"], "data.dataset imagenet needs data.root (ROOT=<path>)"),
        (["sweep", "bottleneck", "--dataset", "tiny-imagenet"], "tiny-imagenet needs data.root"),
        (["prepare", "imagenet", "--root", "/no/such/imagenet"], "no folder /no/such/imagenet"),
        (["sweep", "bottleneck", "--dataset", "imagenet", "--root", "/no/such"], "no folder /no"),
        (["prepare", "imagefolder", "--root", "{tree}", "--protocol", "8020"], "data.protocol"),
        (["prepare", "imagenet", "--root", "{tree}"], "does not have the imagenet layout"),
        (["prepare", "imagenet32", "--root", "{tree}"], "no train_data_batch_<n> files"),
    ],
)
def test_bad_data_sources_are_named_before_ray_starts(args, message, workspace, capsys, no_ray):
    from tests.data import trees

    trees.imagefolder_tree(workspace / "tree", per_class=2)
    assert main([a.format(tree=workspace / "tree") for a in args]) == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith("ovat: error: ") and message in stderr
    assert len(stderr.strip().splitlines()) == 1 and no_ray == []


def test_a_prepared_variant_is_up_to_date_without_starting_ray(workspace, data_dir, capsys, no_ray):
    from data.config import DataConfig
    from data.registry import prepare
    from tests.data import trees

    trees.imagefolder_tree(workspace / "tree", per_class=2)
    prepare(DataConfig(dataset="imagefolder", root=str(workspace / "tree")), data_dir)
    capsys.readouterr()
    assert main(["prepare", "imagefolder", "--root", str(workspace / "tree")]) == 0
    out = capsys.readouterr().out
    assert "ovat: up to date: " in out
    assert "(train 9, val 12, test 9 images at 32 px)" in out  # 3 x 2 + 3 quirks
    assert "skipped train/cat/truncated.JPEG: OSError: image file is truncated" in out
    assert f"DATASET=imagefolder ROOT={workspace / 'tree'} RES=32" in out
    assert no_ray == []


def test_plan_prints_the_trials_its_cost_and_ends_with_the_count(workspace, capsys, no_ray):
    assert main(["plan", "bottleneck", "--seeds", "2", "--set", "train.lr=1e-3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == "ovat: bottleneck: 14 trials (7 values x 2 seeds)"
    [cost] = [line for line in lines if line.startswith("ovat: cost: ")]
    assert "core-hours" in cost and "rates from calibration (14 trials)" in cost
    [resolution] = [line for line in lines if line.startswith("ovat: resolution: ")]
    assert "no earlier sweep of this ablation ran a value on two seeds" in resolution
    assert "this sweep measures it" in resolution  # 2 seeds a value
    assert main(["plan", "bottleneck", "--seeds", "1"]) == 0
    assert "SEEDS=2 or more measure it" in capsys.readouterr().out
    assert "ovat: base: model.bottleneck=softvq train.lr=0.001" in lines
    assert "ovat: baseline: softvq" in lines
    assert any(line.split() == ["ffn", "model.bottleneck=ffn", "seeds", "0,1"] for line in lines)
    assert no_ray == [] and not (workspace / "mlflow.db").exists()


def test_plan_of_seeds_auto_prints_the_rule_and_the_least_and_most_trials(
    workspace, capsys, no_ray
):
    assert main(["plan", "bottleneck", "--seeds", "auto", "--budget", "60"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == (
        "ovat: bottleneck: 21 to 60 trials (7 values x 3 to 10 seeds, until decided; "
        "budget 60 trials)"
    )
    assert any("Holm over 21 pairs, family-wise 5%" in line for line in lines)
    assert any(line.split()[:2] == ["vq", "model.bottleneck=vq"] for line in lines)
    assert no_ray == []


def test_a_budget_in_device_hours_refuses_a_plan_that_costs_more(workspace, capsys, no_ray):
    args = ["plan", "bottleneck", "--preset", "tiny", "--seeds", "2"]
    assert main([*args, "--budget", "0.0001h"]) == 2
    said = capsys.readouterr().err
    assert (
        said.startswith("ovat: error: the plan needs about ")
        and "core-hours but BUDGET=0.0001h" in said
    )
    assert main([*args, "--budget", "100h"]) == 0
    # a race gets the trials the hours pay for, here more than it can use: its most
    assert main([*args[:-2], "--seeds", "auto", "--budget", "100h"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].endswith("budget 70 trials)")
    assert main([*args[:-2], "--seeds", "auto", "--budget", "0.0001h"]) == 2
    assert "BUDGET=0.0001h (0 trials at about " in capsys.readouterr().err
    assert no_ray == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--budget", "abc"],
            "BUDGET='abc' is not a budget; give a number of trials (BUDGET=60) or device-hours",
        ),
        (["--budget", "0"], "BUDGET='0' is not a budget"),
        (["--budget", "0h"], "BUDGET='0h' is not a budget"),
        (["--gap", "-1"], "GAP='-1' is not a difference in test loss; give one above 0"),
        (["--gap", "abc"], "GAP='abc' is not a difference in test loss"),
        (["--seeds", "auto", "--budget", "10"], "BUDGET=10 cannot pay the first round: 7 values"),
        (["--seeds", "10", "--budget", "60"], "the plan needs 70 trials but BUDGET=60"),
        (["--min-seeds", "4"], "MIN_SEEDS= applies to SEEDS=auto only"),
        (["--seeds", "auto", "--min-seeds", "1"], "MIN_SEEDS must be >= 2, got 1"),
        (["--seeds", "auto", "--min-seeds", "5", "--max-seeds", "4"], "MAX_SEEDS must be >= 5"),
    ],
)
def test_bad_seed_rules_and_budgets_are_one_line(args, message, workspace, capsys, no_ray):
    assert main(["plan", "bottleneck", *args]) == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith("ovat: error: ") and message in stderr
    assert len(stderr.strip().splitlines()) == 1 and no_ray == []


def test_plan_of_a_file_with_a_repeated_value_is_one_clear_error(workspace, capsys, no_ray):
    path = workspace / "twice.yaml"
    path.write_text(
        "base: {train.lr: 3e-4}\nvary: {model.bottleneck: [vq, ffn, ffn], train.lr: [3e-4, 1e-3]}\n"
    )
    assert main(["plan", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == f"ovat: error: {path}: vary.model.bottleneck lists 'ffn' twice (as 'ffn'); each value is one trial"
    )
    path.write_text(
        "base: {train.lr: 3e-4}\nvary: {model.bottleneck: [vq, ffn], train.lr: [3e-4, 1e-3]}\n"
    )
    assert main(["plan", str(path)]) == 0
    assert (
        capsys.readouterr().out.strip().splitlines()[-1]
        == "ovat: twice: 3 trials (3 values x 1 seeds)"
    )


def test_the_sweep_command_parses_the_config_once_and_hands_the_plan_down(
    workspace, capsys, monkeypatch
):
    import sweeps.run.tuner
    from trainers import config

    parsed, handed = [], []
    real = config.parse_key
    monkeypatch.setattr(config, "parse_key", lambda k, v: parsed.append(k) or real(k, v))
    monkeypatch.setattr(sweeps.run.tuner, "run_plan", lambda plan, **_: handed.append(plan))
    monkeypatch.setattr("sweeps.cli.sweep.preflight", lambda data=(): None)
    with pytest.raises(AttributeError):  # the stand-in returns no ranking to print
        main(["sweep", "bottleneck", "--set", "train.lr=1e-3", "--seeds", "2"])
    assert parsed.count("train.lr") == 1  # from the command line to every trial's config
    [plan] = handed
    assert all(t.config.train.lr == 1e-3 for t in plan.trials) and len(plan.trials) == 14


def test_a_gpu_plan_on_a_machine_without_gpus_is_costed_from_flops_and_says_the_refusal(
    workspace, capsys, no_ray
):
    from tests.data import trees

    trees.imagenet_tree(workspace / "imagenet", per_class=2)
    assert main(["plan", "bottleneck-group", "--root", str(workspace / "imagenet")]) == 0
    lines = capsys.readouterr().out.splitlines()
    [cost] = [line for line in lines if line.startswith("ovat: cost: ")]
    assert "GPU-hours" in cost and "rates from FLOPs (5 trials)" in cost
    assert any("against a nominal 100 TFLOP/s GPU at 30%: no GPU here" in line for line in lines)
    assert any(
        line.startswith("ovat: first: ") and "source images to decode" in line for line in lines
    )
    [refusal] = [line for line in lines if line.startswith("ovat: make sweep refuses")]
    assert ": one trial needs 16 CPU and 4 GPU but the cluster has " in refusal
    assert refusal.endswith(" CPU and 0 GPU; lower resources.* or add nodes")
    assert no_ray == []


def test_prepare_cuts_a_text_folder_and_names_the_skipped_files(workspace, capsys, no_ray):
    root = workspace / "corpus"
    root.mkdir()
    for i in range(30):
        (root / f"notes{i}.md").write_text(f"# note {i}\n" + "words and more words\n" * 20)
    (root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0")
    assert main(["prepare", "text", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "ovat: skipped logo.png: binary (holds a NUL byte)" in out
    assert "windows of 129 bytes)" in out and "ovat: prepared: " in out
    assert f"next: make sweep ABLATION=gpt-ffn DATASET=text ROOT={root}" in out
    assert main(["prepare", "text", "--root", str(workspace / "nothing")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert no_ray == []
