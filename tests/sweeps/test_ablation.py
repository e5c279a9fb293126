import pytest

from sweeps.define import ablation as ablations
from sweeps.define.ablation import Ablation, AblationError
from trainers.config import ExperimentConfig


def from_dict(raw: dict) -> Ablation:
    return Ablation.from_dict("t", raw, "test.yaml")


def test_bottleneck_ablation_has_the_seven_variants_against_the_groups_baseline():
    plan = ablations.plan(ablations.load("bottleneck"))
    assert [t.value for t in plan.trials] == [
        "softvq",
        "amvq",
        "smvq",
        "ffn",
        "llmffn",
        "vq",
        "identity",
    ]
    assert [t.config.model.bottleneck for t in plan.trials] == [t.value for t in plan.trials]
    assert plan.baseline == "softvq"


def test_seeds_multiply_trials_and_set_train_seed():
    ablation = from_dict({"vary": {"model.bottleneck": ["vq", "ffn"]}})
    plan = ablations.plan(ablation, {"train.epochs": "1"}, seeds=3)
    trials = plan.trials
    assert [(t.value, t.seed) for t in trials] == [(v, s) for v in ("vq", "ffn") for s in range(3)]
    assert {t.config.train.seed for t in trials} == {0, 1, 2}
    assert all(t.config.train.epochs == 1 for t in trials)
    assert len({t.key for t in trials}) == 6
    assert plan.summary() == "ovat: t: 6 trials (2 values x 3 seeds)"
    later = ablations.plan(ablation, {}, seeds=2, first_seed=3).trials
    assert [t.seed for t in later] == [3, 4, 3, 4]
    assert {t.config.train.seed for t in later} == {3, 4}


def test_several_varied_settings_give_ovat_trials_not_the_grid():
    raw = {
        "base": {"model": {"bottleneck": "vq"}, "train.lr": 3e-4},
        "vary": {"model.bottleneck": ["vq", "ffn", "smvq"], "train.lr": [3e-4, 1e-3]},
    }
    trials = ablations.plan(from_dict(raw)).trials
    assert [t.value for t in trials] == [
        "base",
        "model.bottleneck=ffn",
        "model.bottleneck=smvq",
        "train.lr=0.001",
    ]
    lr_trial = trials[-1].config
    assert lr_trial.train.lr == 1e-3 and lr_trial.model.bottleneck == "vq"


def test_a_value_equal_to_the_base_after_parsing_is_the_base():
    # PyYAML reads 3e-4 as the string "3e-4" (YAML 1.1 floats need a dot): compared as text it
    # would be a fourth trial that repeats the base.
    raw = {
        "base": {"train.lr": "3e-4"},
        "vary": {"model.bottleneck": ["ffn"], "train.lr": ["3e-4", "1e-3"]},
    }
    plan = ablations.plan(from_dict(raw))
    assert [t.value for t in plan.trials] == ["base", "model.bottleneck=ffn", "train.lr=1e-3"]
    assert plan.baseline == "base"


@pytest.mark.parametrize(
    "values",
    [["vq", "ffn", "ffn"], ["0.0003", "3e-4"]],
    ids=["same text", "same after parsing"],
)
def test_a_value_listed_twice_is_an_error_naming_it_and_the_file(values):
    key = "model.bottleneck" if values[0] == "vq" else "train.lr"
    with pytest.raises(AblationError, match=rf"test.yaml: vary.{key} lists '{values[-1]}' twice"):
        from_dict({"vary": {key: values}})


@pytest.mark.parametrize(
    ("baseline", "label"),
    [
        ("", "base"),
        ("base", "base"),
        ("model.bottleneck=ffn", "model.bottleneck=ffn"),
        ("ffn", "model.bottleneck=ffn"),  # a bare value that names one planned trial
        ("1e-3", "train.lr=0.001"),  # matched after parsing
        ("vq", "base"),  # the base's own value of a varied setting is the base
    ],
)
def test_the_baseline_written_with_several_settings_is_honoured(baseline, label):
    raw = {
        "base": {"model.bottleneck": "vq"},
        "vary": {"model.bottleneck": ["ffn"], "train.lr": [1e-3]},
        "baseline": baseline,
    }
    assert ablations.plan(from_dict(raw)).baseline == label


def test_a_baseline_that_is_no_planned_trial_is_refused_with_the_choices():
    raw = {"vary": {"model.bottleneck": ["ffn"], "train.lr": [1e-3]}, "baseline": "smvq"}
    with pytest.raises(AblationError, match="baseline 'smvq' is not a planned value; valid: base"):
        from_dict(raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"vary": {"model.bottlenek": ["vq"]}}, "test.yaml: vary: unknown config key 'model.bot"),
        (
            {"vary": {"model.bottleneck": ["vq", "vqq"]}},
            "test.yaml: unknown model.bottleneck 'vqq'",
        ),
        ({"base": {"train.lr": "x"}, "vary": {"train.seed": [0]}}, "train.lr: expected float"),
        ({"vary": {"model.bottleneck": []}}, "non-empty list"),
        ({"vary": {"model.bottleneck": ["vq"]}, "baseline": "ffn"}, "baseline 'ffn' is not"),
        ({"vary": {"model.bottleneck": ["vq"]}, "sedes": 2}, "unknown key 'sedes'"),
        ({"vary": {"model.bottleneck": ["vq"]}, "seeds": 0}, "seeds must be an integer >= 1"),
        ({"vary": {"model.bottleneck": ["vq"]}, "preset": "huge"}, "unknown preset 'huge'"),
        ({"base": {}}, "needs a 'vary' mapping"),
        ({"probe": {"repeats": 3, "determinstic": True}}, "unknown probe key 'determinstic'"),
        ({"probe": {"repeats": 3}, "vary": {"train.seed": [0]}}, "takes the place of 'vary'"),
        ({"probe": {}, "base": {"model.bottleneck": "vqq"}}, "unknown model.bottleneck 'vqq'"),
    ],
)
def test_bad_ablation_files_name_file_and_key(raw, message):
    with pytest.raises(AblationError, match=message):
        from_dict(raw)


def test_an_ablation_built_in_code_is_named_in_its_errors():
    with pytest.raises(AblationError, match=r"^mine \(in code\): needs a 'vary' mapping"):
        Ablation.from_dict("mine", {})


def test_a_preset_sits_under_the_base_and_the_command_line_replaces_it():
    ablation = from_dict(
        {"preset": "tiny", "base": {"train.epochs": 3}, "vary": {"train.seed": [0]}}
    )
    plan = ablations.plan(ablation)
    assert plan.base.model.hidden_channels == 16 and plan.base.train.epochs == 3
    assert ablations.plan(ablation, preset="default").base.model.hidden_channels == 128


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
    assert ablations.base_config(placement).model.bottleneck == "vq"
    assert ablations.probe_files() == ["placement"]


@pytest.mark.parametrize("name", ablations.available())
def test_every_shipped_ablation_file_plans(name):
    ablation = ablations.load(name)
    plan = ablations.plan(ablation)
    assert plan.trials and all(isinstance(t.config, ExperimentConfig) for t in plan.trials)


def test_a_plan_saved_for_resume_loads_back_equal(tmp_path):
    plan = ablations.plan(ablations.load("bottleneck"), {"train.lr": "1e-3"}, seeds=2)
    loaded = type(plan).load(plan.save(tmp_path / "plan.json"))
    assert loaded == plan
