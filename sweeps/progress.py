"""One readable line per trial event, instead of Tune's wide status tables."""

import time

import ray.tune


class TrialProgress(ray.tune.Callback):
    def __init__(self, total: int):
        self.total, self.done, self.started = total, 0, time.time()  # wall: survives restore

    def say(self, trial, text: str) -> None:
        spec = trial.config["trial"]
        elapsed = time.time() - self.started
        print(f"[{elapsed:6.0f}s {self.done}/{self.total}] {spec['key']:<20} {text}", flush=True)

    def on_trial_start(self, iteration, trials, trial, **info):
        self.say(trial, "started")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if result.get("ovat.diverged"):
            return self.say(trial, f"FAILED: {result['ovat.diverged']}")
        epochs = trial.config["trial"]["config"]["train.epochs"]
        text = (
            f"epoch {result.get('epoch')}/{epochs} train {result.get('train_loss', 0):.4f} "
            f"val {result.get('val_loss', 0):.4f}"
        )
        if "test_loss" in result:
            text += f" test {result['test_loss']:.4f}"
        self.say(trial, text)
        if result.get("ovat.untrained"):
            self.say(
                trial, f"WARNING trainable but never got a gradient: {result['ovat.untrained']}"
            )
        if result.get("ovat.frozen_changed"):
            self.say(trial, f"WARNING frozen but changed: {result['ovat.frozen_changed']}")

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.done += 1
        self.say(trial, "finished")

    def on_trial_error(self, iteration, trials, trial, **info):
        self.done += 1
        self.say(trial, "FAILED (see its MLflow run's ovat.error tag)")
