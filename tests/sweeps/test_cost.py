"""A sweep's cost before it runs: the arithmetic against made-up rates, the rates read from a
real (SQLite) store's earlier trials, and the budgets and gaps a user types."""

import time

import pytest
from mlflow.tracking import MlflowClient

from sweeps.define.cost import (
    Rate,
    SweepCost,
    TrialCost,
    parse_budget,
    parse_gap,
    trial_seconds,
    wall_seconds,
)
from sweeps.publish.history import history_rates, seed_spread
from tests.conftest import tiny_plan
from trainers import keys
from trainers.config import ConfigError


def test_a_trial_is_its_start_up_and_its_epochs_of_training_and_scoring():
    rate = Rate(images_per_s=100.0, startup_s=20.0, source="calibration")
    # 2 epochs of 1,000 train images (10 s) and 300 scored at 3x the rate (1 s)
    assert trial_seconds(rate, 2, 1000, 300) == pytest.approx(20 + 2 * (10 + 1))


def test_the_sweep_runs_trials_in_plan_order_in_its_slots():
    costs = [TrialCost(f"t{i}", s, 1.0, "x") for i, s in enumerate([10, 10, 10, 30, 5])]
    # slot A: 10, then 10 (20), then 5 (25)... in plan order: A 10 | B 10 | A 20 | B 40 | A 25
    assert wall_seconds(costs, 2) == 40
    assert wall_seconds(costs, 1) == 65 and wall_seconds(costs, 5) == 30
    sweep = SweepCost(tuple(costs), 2, "core")
    assert sweep.device_hours == pytest.approx(65 / 3600)
    assert sweep.sources == "x (5 trials)"


@pytest.mark.parametrize(
    ("text", "budget"),
    [("60", (60, 0.0)), ("2h", (0, 2.0)), ("1.5 hours", (0, 1.5)), (None, (0, 0.0))],
)
def test_budgets_are_trials_or_device_hours(text, budget):
    parsed = parse_budget(text)
    assert (parsed.trials, parsed.hours) == budget


@pytest.mark.parametrize("text", ["abc", "0", "0h", "-1", "2 days"])
def test_a_budget_that_is_neither_is_one_line_naming_both_forms(text):
    with pytest.raises(
        ConfigError, match=r"is not a budget; give a number of trials .* or device-hours"
    ):
        parse_budget(text)


@pytest.mark.parametrize("text", ["-1", "0", "abc"])
def test_a_gap_must_be_a_positive_difference(text):
    with pytest.raises(ConfigError, match=f"GAP='{text}' is not a difference in test loss"):
        parse_gap(text)
    assert parse_gap("0.001") == 0.001 and parse_gap(None) == 0.0


def log_trial(store, experiment, plan, trial, started_ms, seconds, loss, sweep="s1"):
    """An earlier trial as the sweep's callback logs it: its params, tags and epoch metrics."""
    tags = {
        keys.ROLE: keys.ROLE_TRIAL,
        keys.SWEEP_ID: sweep,
        keys.ABLATION: plan.name,
        keys.VALUE: trial.value,
        f"{keys.PLACEMENT}device": "cpu",
    }
    run = store.create_run(experiment, start_time=started_ms, tags=tags)
    for name, value in trial.config.to_params().items():
        store.log_param(run.info.run_id, name, str(value))
    for name, value in {
        "startup_s": 5.0,
        "train_s": 4.0,
        keys.IMAGES_PER_S: 25.0,
        keys.TEST_LOSS: loss,
    }.items():
        store.log_metric(run.info.run_id, name, value)
    store.set_terminated(run.info.run_id, "FINISHED", end_time=started_ms + int(seconds * 1000))


def test_earlier_trials_of_the_same_model_give_the_rate_and_their_sweeps_the_spread(
    tmp_path, monkeypatch
):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    plan = tiny_plan("pair", {"vary": {"model.bottleneck": ["vq", "ffn"]}}, {"train.epochs": 2})
    store = MlflowClient(uri)
    experiment = store.create_experiment("ovat-pair")
    now = int(time.time() * 1000)
    vq = plan.trial("vq/s0")
    for seed, loss in enumerate([0.020, 0.024]):
        # 5 s start-up, then 2 epochs of 100 train images (25/s x 4 s) in 25 s each: 55 s
        log_trial(store, experiment, plan, vq, now + seed, 55.0, loss)
    rates = history_rates(plan.trials, eval_share=0.3)
    assert set(rates) == {"vq/s0"}  # no earlier ffn trial: it is calibrated instead
    # 25 s an epoch for 100 train and 30 scored images (at 3x): (100 + 10) / 25 images/s
    assert rates["vq/s0"].images_per_s == pytest.approx(110 / 25)
    assert rates["vq/s0"].startup_s == 5.0 and rates["vq/s0"].detail == "2 earlier trials"
    assert trial_seconds(rates["vq/s0"], 2, 100, 30) == pytest.approx(55.0)
    other = tiny_plan("pair", {"vary": {"model.bottleneck": ["vq"]}}, {"train.batch_size": 8})
    assert history_rates(other.trials, 0.3) == {}  # another batch: another speed
    spread = seed_spread("pair")
    assert spread.df == 1 and spread.sd == pytest.approx(0.004 / 2**0.5)
    assert spread.source == "1 earlier sweeps of pair (2 trials)"
    assert seed_spread("other") is None
