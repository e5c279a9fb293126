"""ovat's reads of a real (SQLite) MLflow store that span experiments."""

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
