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
