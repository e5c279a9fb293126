from pathlib import Path

import pytest

from sweeps import ablation as ablations
from sweeps.ablation import AblationError

HERE = Path("test.yaml")


def test_bottleneck_ablation_has_the_seven_variants():
    ablation = ablations.load("bottleneck")
    trials = ablations.expand(ablation, {}, seeds=1)
    assert [t.value for t in trials] == [
        "vq",
        "softvq",
        "amvq",
        "smvq",
        "ffn",
        "llmffn",
        "identity",
    ]
    assert [t.config["model.bottleneck"] for t in trials] == [t.value for t in trials]
    assert ablation.baseline == "vq"


def test_seeds_multiply_trials_and_set_train_seed():
    ablation = ablations.parse("t", {"vary": {"model.bottleneck": ["vq", "ffn"]}}, HERE)
    trials = ablations.expand(ablation, {"train.epochs": "1"}, seeds=3)
    assert [(t.value, t.seed) for t in trials] == [(v, s) for v in ("vq", "ffn") for s in range(3)]
    assert {t.config["train.seed"] for t in trials} == {0, 1, 2}
    assert all(t.config["train.epochs"] == 1 for t in trials)
    assert len({t.key for t in trials}) == 6
    later = ablations.expand(ablation, {}, seeds=2, first_seed=3)
    assert [t.seed for t in later] == [3, 4, 3, 4]
    assert {t.config["train.seed"] for t in later} == {3, 4}


def test_several_varied_settings_give_ovat_trials_not_the_grid():
    raw = {
        "base": {"model": {"bottleneck": "vq"}, "train.lr": 3e-4},
        "vary": {"model.bottleneck": ["vq", "ffn", "smvq"], "train.lr": [3e-4, 1e-3]},
    }
    trials = ablations.expand(ablations.parse("t", raw, HERE), {}, seeds=1)
    assert [t.value for t in trials] == [
        "base",
        "model.bottleneck=ffn",
        "model.bottleneck=smvq",
        "train.lr=0.001",
    ]
    lr_trial = trials[-1].config
    assert lr_trial["train.lr"] == 1e-3 and lr_trial["model.bottleneck"] == "vq"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"vary": {"model.bottlenek": ["vq"]}}, "test.yaml: unknown config key 'model.bottlenek'"),
        (
            {"vary": {"model.bottleneck": ["vq", "vqq"]}},
            "test.yaml: unknown model.bottleneck 'vqq'",
        ),
        ({"base": {"train.lr": "x"}, "vary": {"train.seed": [0]}}, "train.lr: expected float"),
        ({"vary": {"model.bottleneck": []}}, "non-empty list"),
        ({"vary": {"model.bottleneck": ["vq"]}, "baseline": "ffn"}, "baseline 'ffn' is not"),
        ({"vary": {"model.bottleneck": ["vq"]}, "sedes": 2}, "unknown key 'sedes'"),
        ({"base": {}}, "needs a 'vary' mapping"),
        ({"probe": {"repeats": 3, "determinstic": True}}, "unknown probe key 'determinstic'"),
        ({"probe": {"repeats": 3}, "vary": {"train.seed": [0]}}, "takes the place of 'vary'"),
        ({"probe": {}, "base": {"model.bottleneck": "vqq"}}, "unknown model.bottleneck 'vqq'"),
    ],
)
def test_bad_ablation_files_name_file_and_key(raw, message):
    with pytest.raises(AblationError, match=message):
        ablations.parse("t", raw, HERE)


def test_unknown_ablation_lists_the_valid_names():
    with pytest.raises(AblationError, match="unknown ablation 'botleneck'; valid: .*bottleneck"):
        ablations.load("botleneck")


def test_malformed_yaml_names_file_and_line(tmp_path, monkeypatch):
    (tmp_path / "broken.yaml").write_text("vary:\n  model.bottleneck: [vq, ffn\nseeds: 1\n")
    monkeypatch.setattr(ablations, "ABLATIONS_DIR", tmp_path)
    with pytest.raises(AblationError, match=r"broken.yaml:\d+: malformed YAML"):
        ablations.load("broken")


def test_placement_file_is_a_probe_of_its_base_config():
    placement = ablations.load("placement")
    assert placement.probe == {"repeats": 3, "deterministic": True} and not placement.vary
    assert ablations.base_config(placement, {}).model.bottleneck == "vq"
    assert ablations.probe_files() == ["placement"]
