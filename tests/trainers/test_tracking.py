"""ovat's reads of a real (SQLite) MLflow store that span experiments."""

import pytest
from mlflow.exceptions import MlflowException
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from mlflow.tracking import MlflowClient

from trainers import keys, tracking


def test_runs_are_found_in_every_experiment_past_the_first_page(tmp_path, monkeypatch):
    # search_experiments returns one page (1,000 at most): on a shared server with more, a
    # sweep's experiment off that page was not searched, so its trials' runs were not found.
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    store = MlflowClient(uri)
    experiments = [store.create_experiment(f"other-{i}") for i in range(tracking.EXPERIMENTS_PAGE)]
    for sweep, experiment in (("first", "0"), ("last", experiments[-1])):  # 0: Default
        tags = {keys.SWEEP_ID: sweep, keys.ROLE: "sweep", keys.ABLATION: "bottleneck"}
        run = store.create_run(experiment, tags=tags)
        [found] = tracking.sweep_runs(sweep, "sweep")
        assert found.info.run_id == run.info.run_id
    assert len(tracking._all_experiments()) == tracking.EXPERIMENTS_PAGE + 1  # and Default
    assert tracking.latest_sweep_id() == "last"


def test_every_matching_run_is_returned_past_the_first_page_oldest_first(tmp_path, monkeypatch):
    # One search_runs call returns a page (MLflow: 50,000 at most): a sweep of more trials was
    # cut off without a word. Pages of 3 here stand in for that limit.
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setattr(tracking, "RUNS_PAGE", 3)
    store = MlflowClient(uri)
    made = []
    for i in range(8):
        tags = {keys.SWEEP_ID: "big", keys.ROLE: "trial", keys.SEED: str(i)}
        made.append(store.create_run("0", start_time=1000 + i, tags=tags).info.run_id)
    store.create_run("0", start_time=999, tags={keys.SWEEP_ID: "other", keys.ROLE: "trial"})
    assert [r.info.run_id for r in tracking.sweep_runs("big")] == made
    follow_ups = [store.create_run("0", tags={keys.SOURCE_RUN: m}).info.run_id for m in made]
    assert sorted(r.info.run_id for r in tracking.runs_with_source()) == sorted(follow_ups)


def sqlite_store(tmp_path, monkeypatch) -> MlflowClient:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return MlflowClient(uri)


def counted(monkeypatch, method: str) -> list[tuple]:
    """The arguments of every call of MlflowClient.`method` from here on (each still made)."""
    calls, real = [], getattr(MlflowClient, method)

    def counting(self, *args, **kwargs):
        calls.append(args)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, method, counting)
    return calls


def test_a_result_lands_whole_in_as_few_requests_as_the_batch_limits_allow(tmp_path, monkeypatch):
    """One request per result (tags, per-step points, metrics) where it fits; past MLflow's
    limits (1,000 entities, 100 tags a batch) it is split, and nothing is dropped."""
    store = sqlite_store(tmp_path, monkeypatch)
    calls = counted(monkeypatch, "log_batch")
    small, large = (store.create_run("0").info.run_id for _ in range(2))
    points = [["train_loss_step", s, s / 10] for s in range(1, 101)]
    tracking.log_result(small, {"val_loss": 0.5}, 3, 1000, points, {"placement.pid": "7"})
    assert len(calls) == 1
    run = store.get_run(small)
    assert run.data.metrics["val_loss"] == 0.5 and run.data.tags["placement.pid"] == "7"
    history = store.get_metric_history(small, "train_loss_step")
    assert sorted(m.step for m in history) == list(range(1, 101))
    assert [m.step for m in store.get_metric_history(small, "val_loss")] == [3]
    calls.clear()
    points = [["train_loss_step", s, 1.0] for s in range(1500)]
    tags = {f"t{i}": str(i) for i in range(120)}
    tracking.log_result(large, {"val_loss": 0.25}, 1, 1000, points, tags)
    assert len(calls) == 2  # 100 tags + 900 points, then 20 tags + 600 points + 1 metric
    run = store.get_run(large)
    assert {k: v for k, v in run.data.tags.items() if k.startswith("t")} == tags
    assert len(store.get_metric_history(large, "train_loss_step")) == 1500
    assert run.data.metrics["val_loss"] == 0.25


def test_opening_runs_asks_for_their_experiment_once_and_finds_a_run_in_it(tmp_path, monkeypatch):
    """Opening a trial run asked the store for its experiment by name every time, and a lookup
    by trial key listed every experiment first: two of six requests per trial at 4,000 trials."""
    store = sqlite_store(tmp_path, monkeypatch)
    uri = store.tracking_uri
    real = MlflowClient.get_experiment_by_name
    asked = counted(monkeypatch, "get_experiment_by_name")
    key = {keys.SWEEP_ID: "s", keys.ROLE: keys.ROLE_TRIAL, keys.SEED: "0"}
    elsewhere = store.create_run(store.create_experiment("elsewhere"), tags=key).info.run_id
    assert tracking.find_run(key) == elsewhere  # any experiment
    assert tracking.find_run(key, "ovat-open") is None  # only the one named
    opened = [tracking.create_run("ovat-open", f"t{i}", {**key, "i": i}) for i in range(3)]
    assert asked == [("ovat-open",)]
    assert tracking.find_run({**key, "i": "1"}, "ovat-open") == opened[1]
    experiment = real(store, "ovat-open")  # not counted: the test's own read
    assert {store.get_run(r).info.experiment_id for r in opened} == {experiment.experiment_id}
    assert experiment.tags[tracking.EXPERIMENT_KIND[0]] == tracking.EXPERIMENT_KIND[1]
    store.delete_experiment(experiment.experiment_id)  # deleted under a running driver
    tracking.forget_experiment("other")  # forgetting another name keeps this one known
    with pytest.raises(MlflowException) as refused:  # as before: no run in a deleted one
        tracking.create_run("ovat-open", "late", key)
    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
    assert asked == [("ovat-open",)]
    # `mlflow gc` removes it for good, and a new one takes the name: runs go to the new one
    store.create_experiment("newer")  # so SQLite does not hand the old id out again
    SqlAlchemyStore(uri, str(tmp_path / "artifacts"))._hard_delete_experiment(
        experiment.experiment_id
    )
    renewed = store.create_experiment("ovat-open")
    assert renewed != experiment.experiment_id
    late = tracking.create_run("ovat-open", "late", key)
    assert store.get_run(late).info.experiment_id == renewed
