"""One readable line per trial event, instead of Tune's wide status tables."""

import time

import ray.tune

from trainers import keys


class TrialProgress(ray.tune.Callback):
    def __init__(self, plan):
        self.plan = plan
        self.total, self.done, self.started = len(plan.trials), 0, time.time()

    def say(self, trial, text: str) -> None:
        key = trial.config["trial"]
        elapsed = time.time() - self.started
        print(f"[{elapsed:6.0f}s {self.done}/{self.total}] {key:<20} {text}", flush=True)

    def on_trial_start(self, iteration, trials, trial, **info):
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

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.done += 1
        self.say(trial, "finished")

    def on_trial_error(self, iteration, trials, trial, **info):
        self.done += 1
        self.say(trial, "FAILED (see its MLflow run's ovat.error tag)")
