"""One readable line per trial event instead of Tune's wide status tables, and how far the sweep
is: trials done of all and the time left, estimated from the trials finished so far. On a
terminal that status is one line redrawn in place; in a log or CI it is a plain line each time a
trial ends."""

import sys
import time
from collections.abc import Callable
from typing import TextIO

import ray.tune

from sweeps.define.cost import duration
from trainers import keys

ENDED = ("TERMINATED", "ERROR")  # Tune's statuses of a trial that will not run again
CLEAR = "\r\x1b[2K"  # back to the line's start and erase it (a terminal's status line)


class TrialProgress(ray.tune.Callback):
    def __init__(self, plan, clock: Callable[[], float] = time.time, out: TextIO | None = None):
        self.plan, self.clock = plan, clock
        self.stream = out  # None: sys.stdout when printing (Tune pickles its callbacks)
        self.total, self.done, self.running = len(plan.trials), 0, 0
        self.at_most = plan.rule is not None  # a race may stop before its last trial
        self.started = clock()
        self.earlier: int | None = None  # trials ended before this run of the sweep (a resume)

    def setup(self, **info):
        """Each `fit`, also a resumed sweep's (its callbacks come back as first pickled): the
        time counts from now, not across the downtime."""
        self.started, self.done, self.running, self.earlier = self.clock(), 0, 0, None

    def on_step_begin(self, iteration, trials, **info):
        if self.earlier is None:  # the first step sees the trials a resumed sweep restored
            self.earlier = sum(t.status in ENDED for t in trials)
            self.done = self.earlier

    @property
    def out(self) -> TextIO:
        return self.stream or sys.stdout

    @property
    def tty(self) -> bool:
        return self.out.isatty()

    def eta(self) -> str:
        """Time left at the rate trials have finished so far (concurrency included)."""
        ended_now = self.done - (self.earlier or 0)
        if self.done >= self.total:
            return "done"
        if ended_now <= 0:
            return "time left: known after the first trial ends"
        per_trial = (self.clock() - self.started) / ended_now
        left = duration(per_trial * (self.total - self.done))
        return f"at most about {left} left" if self.at_most else f"about {left} left"

    def status(self) -> str:
        elapsed = duration(self.clock() - self.started)
        return (
            f"ovat: {self.done}/{'at most ' if self.at_most else ''}{self.total} trials done, "
            f"{self.running} running, "
            f"{elapsed} elapsed, {self.eta()}"
        )

    def say(self, trial, text: str) -> None:
        line = f"ovat: {trial.config['trial']:<22} {text}"
        if self.tty:
            print(f"{CLEAR}{line}\n{self.status()}", end="", file=self.out, flush=True)
        else:
            print(line, file=self.out, flush=True)

    def on_trial_start(self, iteration, trials, trial, **info):
        self.running += 1
        self.say(trial, "started")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if result.get(keys.DIVERGED):
            return self.say(trial, f"FAILED: {result[keys.DIVERGED]}")
        epochs = self.plan.trial(trial.config["trial"]).config.train.epochs
        text = (
            f"epoch {result.get(keys.EPOCH)}/{epochs} "
            f"train {result.get(keys.TRAIN_LOSS, 0):.4f} val {result.get(keys.VAL_LOSS, 0):.4f}"
        )
        if keys.TEST_LOSS in result:
            text += f" test {result[keys.TEST_LOSS]:.4f}"
        self.say(trial, text)
        if result.get(keys.UNTRAINED):
            self.say(trial, f"WARNING trainable but never got a gradient: {result[keys.UNTRAINED]}")
        if result.get(keys.FROZEN_CHANGED):
            self.say(trial, f"WARNING frozen but changed: {result[keys.FROZEN_CHANGED]}")

    def ended(self, trial, text: str) -> None:
        self.done += 1
        self.running = max(0, self.running - 1)
        self.say(trial, text)
        if not self.tty:
            print(self.status(), file=self.out, flush=True)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.ended(trial, "finished")

    def on_trial_error(self, iteration, trials, trial, **info):
        self.ended(trial, "FAILED (see its MLflow run's ovat.error tag)")

    def on_trial_recover(self, iteration, trials, trial, **info):
        self.running = max(0, self.running - 1)  # it starts again, and is counted again then
        self.say(trial, "errored; Tune reruns it from its last checkpoint")

    def on_experiment_end(self, trials, **info):
        if self.tty:
            print(file=self.out, flush=True)  # leave the status line, end it
