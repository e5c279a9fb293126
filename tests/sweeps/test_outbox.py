"""The outbox against real stores: a loopback port with nothing listening is the outage (a real
connection refused), a SQLite store is the store coming back. No Ray."""

import json
import socket
import time

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from sweeps.run.outbox import OUTBOX_FILE, REJECTED_FILE, Outbox, sweep_outbox
from tests.conftest import free_port
from trainers import tracking

KEY_TAGS = {"ovat.sweep_id": "s1", "ovat.trial_key": "vq/s0"}


@pytest.fixture
def outage(monkeypatch, tmp_path):
    """Tracking URI on a closed loopback port; `restore()` switches to a real SQLite store."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri = f"sqlite:///{tmp_path}/mlflow.db"

    def restore() -> MlflowClient:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        return MlflowClient(uri)

    return restore


def queue_trial(outbox: Outbox, checkpoint: str = "") -> None:
    """The writes one short trial makes: open, two epochs, per-step points, completion."""
    tags = {**KEY_TAGS, "ovat.role": "trial"}
    outbox.open_run(
        KEY_TAGS, experiment="e", name="vq-s0", tags=tags, params={"train.lr": 0.1}, parent_id=""
    )
    for epoch in (1, 2):
        outbox.write("tags", KEY_TAGS, tags={"placement.pid": str(100 + epoch)})
        points = [["train_loss_step", 10 * epoch + s, 1.0 / (s + 1)] for s in range(3)]
        outbox.write("points", KEY_TAGS, points=points, timestamp_ms=1000 * epoch)
        outbox.write(
            "metrics", KEY_TAGS, metrics={"val_loss": 0.5 / epoch}, step=epoch, timestamp_ms=1000
        )
    outbox.write("complete", KEY_TAGS, diverged="", checkpoint=checkpoint)


def trial_run(client: MlflowClient):
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, "tags.`ovat.trial_key` = 'vq/s0'")
    assert len(runs) == 1, f"expected one run for the trial, found {len(runs)}"
    return runs[0]


def test_writes_wait_on_disk_during_an_outage_and_arrive_in_order_later(outage, tmp_path):
    folder = tmp_path / "results" / "s1"
    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    (checkpoint / "model.pt").write_bytes(b"weights")
    outbox = Outbox(folder)
    queue_trial(outbox, str(checkpoint))  # must not raise: the trials keep training

    saved = (folder / OUTBOX_FILE).read_text().splitlines()
    assert [json.loads(line)["op"] for line in saved] == ["open", "params"] + [
        "tags",
        "points",
        "metrics",
    ] * 2 + ["complete"]
    assert not outbox.flush(), "nothing can be delivered while the store is down"

    client = outage()
    Outbox(folder).drain(wait_s=0)  # a new driver (a resume) delivers what the last one left

    assert not (folder / OUTBOX_FILE).exists()
    run = trial_run(client)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"train.lr": "0.1"}
    assert run.data.tags["placement.pid"] == "102"  # the later write wins: order kept
    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert [(m.step, m.value, m.timestamp) for m in history] == [(1, 0.5, 1000), (2, 0.25, 1000)]
    steps = client.get_metric_history(run.info.run_id, "train_loss_step")
    assert sorted(m.step for m in steps) == [10, 11, 12, 20, 21, 22]
    assert [a.path for a in client.list_artifacts(run.info.run_id, "checkpoint")] == [
        "checkpoint/model.pt"
    ]


def test_redelivery_after_a_lost_response_duplicates_nothing(outage, tmp_path):
    down = Outbox(tmp_path / "results" / "s1")
    queue_trial(down)  # queued, not delivered: the store is down
    client = outage()
    outbox = Outbox(tmp_path / "results" / "s2")
    for entry in down.pending + down.pending:  # every write delivered twice
        outbox.deliver(entry)

    run = trial_run(client)
    assert run.info.status == "FINISHED"
    assert len(client.get_metric_history(run.info.run_id, "val_loss")) == 2
    assert len(client.get_metric_history(run.info.run_id, "train_loss_step")) == 6


def test_a_trial_nests_under_a_run_the_queue_opened_before_even_after_a_restart(outage, tmp_path):
    folder = tmp_path / "results" / "s1"
    value_tags = {"ovat.sweep_id": "s1", "ovat.role": "value", "ovat.value": "vq"}
    down = Outbox(folder)
    down.open_run(value_tags, experiment="e", name="vq-sample", tags=value_tags, params={})
    queue_trial_under(down, value_tags)
    client = outage()
    Outbox(folder).drain(wait_s=0)  # a new driver: it knows neither run id
    [value_run] = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "tags.`ovat.role` = 'value'"
    )
    assert trial_run(client).data.tags["mlflow.parentRunId"] == value_run.info.run_id
    assert "mlflow.parentRunId" not in value_run.data.tags  # no parent asked for: none

    later = Outbox(tmp_path / "results" / "s1-later")  # knows only the tags, as on resume
    later.write("metrics", value_tags, metrics={"n": 1.0}, step=0, timestamp_ms=5)
    assert client.get_run(value_run.info.run_id).data.metrics == {"n": 1.0}


def queue_trial_under(outbox: Outbox, parent_key: dict) -> None:
    tags = {**KEY_TAGS, "ovat.role": "trial"}
    outbox.open_run(
        KEY_TAGS, experiment="e", name="vq-s0", tags=tags, params={}, parent_key=parent_key
    )


def test_a_refused_write_is_set_aside_and_the_rest_still_arrive(outage, tmp_path):
    client = outage()
    folder = tmp_path / "results" / "s1"
    outbox = Outbox(folder)
    outbox.open_run(
        KEY_TAGS, experiment="e", name="vq-s0", tags=dict(KEY_TAGS), params={}, parent_id=""
    )
    outbox.write("metrics", KEY_TAGS, metrics={"../bad": 1.0}, step=1, timestamp_ms=1)
    outbox.write("metrics", KEY_TAGS, metrics={"val_loss": 1.0}, step=1, timestamp_ms=1)

    assert outbox.pending == []
    rejected = [json.loads(line) for line in (folder / REJECTED_FILE).read_text().splitlines()]
    assert [r["metrics"] for r in rejected] == [{"../bad": 1.0}]
    assert "Invalid value" in rejected[0]["error"]
    history = client.get_metric_history(trial_run(client).info.run_id, "val_loss")
    assert [m.value for m in history] == [1.0]


def test_drain_names_the_store_and_the_file_when_it_stays_down(outage, tmp_path):
    outbox = Outbox(tmp_path / "results" / "s1")
    queue_trial(outbox)
    with pytest.raises(tracking.TrackingUnavailable, match=r"still unreachable.*outbox\.jsonl"):
        outbox.drain(wait_s=0)


def test_an_unknown_write_names_the_valid_ones(tmp_path):
    with pytest.raises(
        ValueError, match="unknown outbox write 'metric'; valid: params, dataset, metrics"
    ):
        Outbox(tmp_path).write("metric", KEY_TAGS)


class FlakyClient:
    """The real client, except that the `nth` call of `method` fails as an outage does (once)."""

    def __init__(self, real, method: str, nth: int):
        self.real, self.method, self.nth, self.calls = real, method, nth, 0

    def __getattr__(self, name):
        attribute = getattr(self.real, name)
        if name != self.method:
            return attribute

        def call(*args, **kwargs):
            self.calls += 1
            if self.calls == self.nth:
                raise MlflowException("connection refused", error_code="INTERNAL_ERROR")
            return attribute(*args, **kwargs)

        return call


@pytest.mark.parametrize(
    ("method", "nth"),
    [
        ("log_batch", 1),  # right after the run was created: its params
        ("log_batch", 2),  # after the params: the first tags
        ("log_batch", 4),  # mid-metrics: the first epoch's metrics, its points already in
        ("log_artifacts", 1),  # the checkpoint, before the status
        ("set_terminated", 1),  # the status itself
    ],
    ids=["after create", "after params", "mid-metrics", "artifacts", "before the status"],
)
def test_an_outage_at_any_cut_point_loses_no_write(method, nth, tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    real = tracking.client()
    flaky = FlakyClient(real, method, nth)
    monkeypatch.setattr(tracking, "client", lambda: flaky)
    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    (checkpoint / "model.pt").write_bytes(b"weights")
    outbox = Outbox(tmp_path / "results" / "s1")
    queue_trial(outbox, str(checkpoint))
    assert flaky.calls >= nth and outbox.pending, "the outage never happened"
    outbox.drain(wait_s=0)  # the store answers again: everything queued arrives, once

    client = MlflowClient(uri)
    run = trial_run(client)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"train.lr": "0.1"}
    assert run.data.tags["placement.pid"] == "102"
    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert [(m.step, m.value) for m in history] == [(1, 0.5), (2, 0.25)]
    assert len(client.get_metric_history(run.info.run_id, "train_loss_step")) == 6
    assert [a.path for a in client.list_artifacts(run.info.run_id, "checkpoint")] == [
        "checkpoint/model.pt"
    ]


def test_a_local_file_error_is_set_aside_not_retried_as_an_outage(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    folder = tmp_path / "results" / "s1"
    outbox = Outbox(folder)
    queue_trial(outbox, checkpoint=str(tmp_path / "no-such-checkpoint"))
    assert outbox.pending == [] and outbox.down_since is None  # not an outage
    [rejected] = [json.loads(line) for line in (folder / REJECTED_FILE).read_text().splitlines()]
    assert rejected["op"] == "complete" and "no-such-checkpoint" in rejected["error"]


WRITER_BOUND_S = 2.0  # "a fraction of a second" per write, for all nine writes on a busy machine
STALL_S = 120  # what one write would hold its caller for if it delivered itself


@pytest.fixture
def stalled(monkeypatch):
    """A hung tracking server: a loopback port that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(60)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{server.getsockname()[1]}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", str(STALL_S))
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    yield server
    server.close()


def test_a_stalled_store_never_holds_the_writer_and_nothing_is_lost(stalled, tmp_path, monkeypatch):
    """Tune's callback thread only queues: while the courier's first request hangs on a server
    that never answers, all of a trial's writes return and wait on disk, in order."""
    folder = tmp_path / "results" / "s1"
    outbox = Outbox(folder, background=True)
    began = time.monotonic()
    queue_trial(outbox)
    queued_in = time.monotonic() - began
    connection, _ = stalled.accept()  # the courier's request did reach the server, and hangs
    assert queued_in < WRITER_BOUND_S, f"writers waited {queued_in:.1f} s on a hung store"
    assert outbox.courier.is_alive() and len(outbox.pending) == 9
    saved = [json.loads(line)["op"] for line in (folder / OUTBOX_FILE).read_text().splitlines()]
    assert saved == ["open", "params"] + ["tags", "points", "metrics"] * 2 + ["complete"]

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # the store comes back elsewhere
    connection.close()  # the hung request fails: an outage, the writes stay queued
    outbox.close(timeout=STALL_S)
    assert not outbox.courier.is_alive() and outbox.pending
    outbox.drain(wait_s=0)

    client = MlflowClient(uri)
    run = trial_run(client)
    assert run.info.status == "FINISHED" and run.data.tags["placement.pid"] == "102"
    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert [(m.step, m.value) for m in history] == [(1, 0.5), (2, 0.25)]
    assert not (folder / OUTBOX_FILE).exists()


def test_the_courier_delivers_while_the_writer_goes_on(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    folder = tmp_path / "results" / "s1"
    outbox = sweep_outbox(folder)
    assert sweep_outbox(tmp_path / "results" / ".." / "results" / "s1") is outbox  # one per file
    queue_trial(outbox)
    deadline = time.monotonic() + 120
    while outbox.pending and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not outbox.pending and not (folder / OUTBOX_FILE).exists()
    outbox.close()
    assert not outbox.courier.is_alive()
    run = trial_run(MlflowClient(uri))
    assert run.info.status == "FINISHED" and run.data.params == {"train.lr": "0.1"}
    assert [m.value for m in MlflowClient(uri).get_metric_history(run.info.run_id, "val_loss")] == [
        0.5,
        0.25,
    ]


def test_the_end_of_a_sweep_waits_through_an_outage_but_not_through_a_refusal():
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    from sweeps.run.outages import through_outages

    calls = []

    def publish_after_two_outages():
        calls.append(1)
        if len(calls) <= 2:
            raise MlflowException("connection refused", error_code="INTERNAL_ERROR")
        return "ranked"

    assert through_outages(publish_after_two_outages, wait_s=60, poll_s=0) == "ranked"
    assert len(calls) == 3

    def refused():
        calls.append(1)
        raise MlflowException("bad value", error_code=INVALID_PARAMETER_VALUE)

    calls.clear()
    with pytest.raises(MlflowException, match="bad value"):
        through_outages(refused, wait_s=60, poll_s=0)
    assert len(calls) == 1  # a refusal is not retried

    def down():
        raise MlflowException("connection refused", error_code="INTERNAL_ERROR")

    with pytest.raises(MlflowException, match="connection refused"):
        through_outages(down, wait_s=0, poll_s=0)  # past the wait: the outage's own error


class SlowClient:
    """The real client, with a tracking server's wait before each log_batch (the store itself,
    SQLite, takes one writer at a time); counts the calls in flight together."""

    def __init__(self, real):
        import threading

        self.real, self.lock, self.in_flight, self.most = real, threading.Lock(), 0, 0

    def __getattr__(self, name):
        attribute = getattr(self.real, name)
        if name != "log_batch":
            return attribute

        def call(*args, **kwargs):
            with self.lock:
                self.in_flight += 1
                self.most = max(self.most, self.in_flight)
            time.sleep(0.05)
            with self.lock:
                self.in_flight -= 1
                return attribute(*args, **kwargs)

        return call


def test_writes_to_different_runs_go_side_by_side_and_each_runs_stay_in_order(
    tmp_path, monkeypatch
):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    slow = SlowClient(tracking.client())
    monkeypatch.setattr(tracking, "client", lambda: slow)
    outbox = Outbox(tmp_path / "results" / "s1", writers=4)
    trials = [{"ovat.sweep_id": "s1", "ovat.trial_key": f"vq/s{seed}"} for seed in range(6)]
    for key_tags in trials:
        outbox.open_run(key_tags, experiment="e", name="vq", tags=key_tags, params={"a": 1})
    outbox.down_since, outbox.next_try = time.monotonic(), time.monotonic() + 60  # queue only
    for epoch in (1, 2, 3):
        for key_tags in trials:
            outbox.write(
                "result", key_tags, metrics={"val_loss": 1 / epoch}, step=epoch,
                timestamp_ms=epoch, points=[["train_loss_step", epoch, 0.5]],
                tags={"placement.pid": str(epoch)},
            )  # fmt: skip
    slow.most = 0
    assert outbox.flush(force=True)
    assert slow.most > 1  # several results in flight at once
    client = MlflowClient(uri)
    for key_tags in trials:
        runs = client.search_runs(["1"], f"tags.`ovat.trial_key` = '{key_tags['ovat.trial_key']}'")
        [run] = runs
        assert run.data.tags["placement.pid"] == "3"  # the last epoch's tag wrote last
        history = client.get_metric_history(run.info.run_id, "val_loss")
        assert sorted(m.step for m in history) == [1, 2, 3]
        assert len(client.get_metric_history(run.info.run_id, "train_loss_step")) == 3


def test_a_window_takes_each_runs_first_write_and_no_child_before_its_parents_open(tmp_path):
    outbox = Outbox(tmp_path, writers=4)
    value, a, b = ({"ovat.key": k} for k in ("value", "a", "b"))
    outbox.pending = [
        {"op": "open", "key_tags": value},
        {"op": "params", "key_tags": value},
        {"op": "open", "key_tags": a, "parent_key": value},  # waits: its parent is not open
        {"op": "open", "key_tags": b},
        {"op": "params", "key_tags": b},  # waits for b's open
        {"op": "tags", "key_tags": {"ovat.key": "c"}},
        {"op": "tags", "key_tags": {"ovat.key": "d"}},
        {"op": "tags", "key_tags": {"ovat.key": "e"}},  # past the 4 writers
    ]
    data = {"op": "dataset", "name": "sample-32px", "digest": "7b9b"}
    outbox.pending += [{**data, "key_tags": {"ovat.key": k}} for k in ("f", "g")]
    outbox.loaded = True
    first = outbox.window()
    assert [e["op"] for e in first] == ["open", "open", "tags", "tags"]
    assert [e["key_tags"]["ovat.key"] for e in first] == ["value", "b", "c", "d"]
    outbox.pending = [e for e in outbox.pending if e not in first]
    second = outbox.window()  # the value run is open now: a may open under it
    assert [(e["op"], e["key_tags"]["ovat.key"]) for e in second] == [
        ("params", "value"), ("open", "a"), ("params", "b"), ("tags", "e"),
    ]  # fmt: skip
    outbox.pending = [e for e in outbox.pending if e not in second]
    third = outbox.window()  # one dataset input at a time: MLflow inserts the dataset once
    assert [(e["op"], e["key_tags"]["ovat.key"]) for e in third] == [("dataset", "f")]
