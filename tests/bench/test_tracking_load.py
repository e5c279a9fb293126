"""The logging benchmark's own workings, small: simulated results through the real callback
and outbox into a real SQLite store (no server, no Ray), every one counted in the database."""

from bench.tracking_load import LoadRun, count_rows, result


def test_every_result_reaches_the_store_through_the_real_callback(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    load = LoadRun(tmp_path / "results", trials=14, rate=8.0, points=5, steady_s=3, burst_s=1)
    figures = load.run()
    assert figures["sent"] >= 16 + 14  # the burst (2 x rate x 1 s), then the steady phase
    counted = count_rows(uri, figures["sweep_id"])
    assert counted["train_loss"] == figures["sent"]
    assert counted["train_loss_step"] == 5 * figures["sent"]
    assert counted["startup_s"] == 14  # the first epoch's own metrics, once per trial
    assert figures["ceiling_per_s"] > 0 and figures["delivered_per_s"] > 0
    assert 0 < figures["open_s_per_trial"] and figures["rss_end_mib"] > 0


def test_a_result_carries_its_epochs_steps_every_log_every():
    import random

    first = result(1, 3, 10, True, random.Random(0))
    later = result(2, 3, 10, False, random.Random(0))
    assert [s for s, _ in first["step_metrics"]["train_loss_step"]] == [10, 20, 30]
    assert [s for s, _ in later["step_metrics"]["train_loss_step"]] == [40, 50, 60]
    assert "startup_s" in first and "startup_s" not in later
    assert first["placement.host"] and "placement.host" not in later
