"""The methods paragraph names every setting the sweep actually used, read from what it logged."""

import re

import pytest

from sweeps.judge.racing import Rule
from sweeps.judge.ranking import TrialRow
from sweeps.publish import methods
from trainers.config import ExperimentConfig

# Every setting away from its default, each to a number no other setting has.
SETTINGS = {
    "train.epochs": 7,
    "train.lr": 0.00071,
    "train.weight_decay": 0.013,
    "train.batch_size": 48,
    "resources.workers": 3,
    "data.dataset": "imagenette",
    "data.resolution": 48,
    "data.limit": 123,
    "data.split_seed": 5,
    "data.eval_mask_seed": 11,
    "data.mask_ratio": 0.4,
    "data.mask_patch": 12,
    "data.protocol": "holdout",
    "model.embed_dim": 72,
    "model.codebook_size": 640,
    "model.res_blocks": 3,
    "model.residual": "preact",
}
TAGS = {
    "ovat.vary": "model.bottleneck",
    "ovat.baseline": "vq",
    "mlflow.source.git.commit": "0123456789abcdef0123",
    "ovat.git_dirty": "false",
    "ovat.env.torch": "2.14.1",
    "ovat.env.ray": "2.60.0",
    "ovat.env.mlflow": "3.17.0",
}


def trials(seeds: dict[str, list[int]], kind: str = "cpu-avx2") -> list[TrialRow]:
    return [
        TrialRow(
            value=v,
            seed=s,
            run_name=f"{v}-s{s}",
            status="FINISHED",
            test_loss=0.01,
            params_total=1,
            params_bottleneck=1,
            hardware_kind=kind,
        )
        for v, numbers in seeds.items()
        for s in numbers
    ]


def params() -> dict[str, str]:
    """As MLflow returns them: strings."""
    config = ExperimentConfig().with_overrides(SETTINGS)
    return {k: str(v) for k, v in config.to_params().items()}


def test_the_paragraph_names_every_setting_the_sweep_used():
    text = methods.paragraph(params(), TAGS, trials({"vq": [3, 4], "ffn": [3, 4]}), None)
    expected = [
        "model.bottleneck", "vq and ffn" if "vq and ffn" in text else "ffn and vq",
        "baseline vq", "2 seeds", "seeds 3 and 4", "7 epochs", "learning rate 0.00071",
        "weight decay 0.013", "batch size 48 per worker", "3 workers on CPU", "fp32",
        "imagenette at 48 x 48 px (crop)", "subset of 123 images", "data.split_seed = 5",
        "data.eval_mask_seed = 11", "40% of its 12 px patches", "72-wide", "of 640",
        "3 residual blocks (preact form)", "train cut 80%/20% into train/val (seed 5)",
        "commit 0123456789ab", "torch 2.14.1", "Ray 2.60.0", "MLflow 3.17.0",
        "hardware: cpu-avx2", "Holm", "Welch",
    ]  # fmt: skip
    missing = [phrase for phrase in expected if phrase not in text]
    assert not missing, f"missing {missing} in: {text}"
    assert "\n" not in text.rstrip("\n")  # one paragraph to paste
    assert "?" not in text and "race" not in text.lower()  # no unknowns; a fixed design


def test_a_raced_sweep_says_its_rule_and_the_seeds_each_value_got():
    rule = Rule(min_seeds=3, max_seeds=8, budget=20, alpha=0.1, gamma=-2.0)
    rows = trials({"vq": [0, 1, 2, 3, 4], "ffn": [0, 1, 2]})
    text = methods.paragraph(params(), TAGS, rows, rule)
    for phrase in ("3 to 5 seeds", "3 to 8 per value", "up to 8, and at most 20 trials",
                   "rate of 10% over all pairs", "gamma = -2", "make race-sim"):  # fmt: skip
        assert phrase in text, phrase


def test_uncommitted_code_and_unreadable_settings_are_said_not_hidden():
    tags = {**TAGS, "ovat.git_dirty": "true"}
    text = methods.paragraph({"train.no_such_key": "1"}, tags, trials({"vq": [0]}), None)
    assert "with uncommitted changes" in text
    assert "with 1 seed (a fixed number per value; seed 0)" in text and "1 worker on" in text
    assert re.search(r"could not be read: .*no_such_key", text)


@pytest.mark.parametrize("dataset", ["sample", "imagenet32"])
def test_each_datasets_split_is_described(dataset):
    given = {**params(), "data.dataset": dataset, "data.protocol": "", "data.resolution": "32"}
    given["data.mask_patch"] = "0"
    text = methods.paragraph(given, TAGS, trials({"vq": [0]}), None)
    assert "split: " in text and f"{dataset} at 32 x 32 px" in text


def test_rank_writes_the_paragraph_beside_the_table_and_on_the_sweeps_run(workspace):
    from sweeps.publish.summary import rebuild
    from tests.sweeps.test_publish import fake_sweep
    from trainers import tracking

    fake_sweep("pair-m", {"vq": [0.02, 0.021], "ffn": [0.01, 0.011]}, {"train.epochs": 9})
    published = rebuild("pair-m")
    text = published.paths["methods"].read_text()
    assert published.paths["methods"] == workspace / "results" / "pair-m" / "methods.md"
    assert "9 epochs" in text and "seeds 0 and 1" in text
    [run] = tracking.sweep_runs("pair-m", "sweep")
    assert f"commit {run.data.tags['mlflow.source.git.commit'][:12]}" in text
    names = {a.path for a in tracking.client().list_artifacts(run.info.run_id)}
    assert "methods.md" in names
