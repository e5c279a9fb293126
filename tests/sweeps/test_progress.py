"""The sweep's progress line against a fake clock: trials done of all, and the time left from
the rate at which trials have finished so far."""

import io

from sweeps.run.progress import CLEAR, TrialProgress, duration
from tests.conftest import tiny_plan


class FakeTrial:
    def __init__(self, key: str, status: str = "RUNNING"):
        self.config, self.status = {"trial": key}, status


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_time_left_follows_the_finished_trials_rate():
    now = [1000.0]
    plan = tiny_plan("p", {"vary": {"model.bottleneck": ["vq", "ffn"]}}, seeds=2)  # 4 trials
    out = io.StringIO()
    progress = TrialProgress(plan, clock=lambda: now[0], out=out)
    assert progress.status().endswith("time left: known after the first trial ends")
    for key in ("vq/s0", "vq/s1"):
        progress.on_trial_start(0, [], FakeTrial(key))
    now[0] = 1060.0
    progress.on_trial_complete(0, [], FakeTrial("vq/s0"))
    assert progress.status() == (
        "ovat: 1/4 trials done, 1 running, 1m00s elapsed, about 3m00s left"
    )
    now[0] = 1090.0
    progress.on_trial_error(0, [], FakeTrial("vq/s1"))
    assert progress.status().endswith("2/4 trials done, 0 running, 1m30s elapsed, about 1m30s left")
    lines = out.getvalue().splitlines()  # not a terminal: plain lines, one status per trial end
    assert lines[-2] == "ovat: vq/s1                  FAILED (see its MLflow run's ovat.error tag)"
    assert lines[-1] == progress.status() and CLEAR not in out.getvalue()


def test_on_a_terminal_the_status_is_one_line_redrawn_below_the_events():
    plan = tiny_plan("p", {"vary": {"model.bottleneck": ["vq"]}})
    out = Terminal()
    progress = TrialProgress(plan, clock=lambda: 0.0, out=out)
    progress.on_trial_start(0, [], FakeTrial("vq/s0"))
    progress.on_trial_complete(0, [], FakeTrial("vq/s0"))
    shown = out.getvalue().split(CLEAR)
    assert shown[-1].startswith("ovat: vq/s0") and shown[-1].endswith(
        "1/1 trials done, 0 running, 0s elapsed, done"
    )
    assert out.getvalue().count("\n") == 2  # one line per event; the status is never repeated


def test_durations_read_as_a_person_would_say_them():
    assert [duration(s) for s in (4.4, 65, 3725)] == ["4s", "1m05s", "1h02m"]


def test_a_resumed_sweep_counts_its_ended_trials_and_times_from_the_resume():
    now = [1000.0]
    plan = tiny_plan("p", {"vary": {"model.bottleneck": ["vq", "ffn"]}}, seeds=2)  # 4 trials
    progress = TrialProgress(plan, clock=lambda: now[0], out=io.StringIO())
    now[0] = 90_000.0  # the driver was killed; resumed a day later (Tune restores callbacks)
    progress.setup()
    restored = [FakeTrial("vq/s0", "TERMINATED"), FakeTrial("vq/s1", "TERMINATED")]
    progress.on_step_begin(0, [*restored, FakeTrial("ffn/s0", "PENDING")])
    assert progress.status() == (
        "ovat: 2/4 trials done, 0 running, 0s elapsed, time left: known after the first trial ends"
    )
    progress.on_trial_start(0, [], FakeTrial("ffn/s0"))
    now[0] += 60
    progress.on_step_begin(1, [*restored, FakeTrial("ffn/s0")])  # counted once, at the first
    progress.on_trial_complete(0, [], FakeTrial("ffn/s0"))
    assert progress.status() == "ovat: 3/4 trials done, 0 running, 1m00s elapsed, about 1m00s left"


def test_a_trial_tune_reruns_is_counted_running_once():
    plan = tiny_plan("p", {"vary": {"model.bottleneck": ["vq"]}})
    out = io.StringIO()
    progress = TrialProgress(plan, clock=lambda: 0.0, out=out)
    progress.on_trial_start(0, [], FakeTrial("vq/s0"))
    progress.on_trial_recover(0, [], FakeTrial("vq/s0"))  # errored, Tune reruns it
    progress.on_trial_start(0, [], FakeTrial("vq/s0"))
    assert progress.status().startswith("ovat: 0/1 trials done, 1 running")
    assert "vq/s0                  errored; Tune reruns it from its last checkpoint" in (
        out.getvalue()
    )
    progress.on_trial_complete(0, [], FakeTrial("vq/s0"))
    assert progress.status().startswith("ovat: 1/1 trials done, 0 running")
