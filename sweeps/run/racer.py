"""SEEDS=auto inside Ray Tune: a Searcher that suggests the next (value, seed) as trials end.

It asks the race (sweeps.judge.racing) what the current round still needs, and while that
round waits for its last results it fills free slots with the next round's seeds of values
still racing (never past the budget: sweeps.judge.racing.Race.speculative). Its state is the
results and the trials it started, saved with Tune's experiment state, so a resumed sweep
continues the same race; the decisions themselves are replayed from results alone.
"""

import math
import pickle

from ray.tune.search import Searcher

from sweeps.define.plan import SweepPlan
from sweeps.judge.racing import Race, Rule, replay, shared_architecture
from trainers import keys


class SeedRacer(Searcher):
    def __init__(self, plan: SweepPlan):
        super().__init__()  # no metric: Tune would demand it in every epoch's result
        self.values = plan.values
        self.rule: Rule = plan.rule
        # The race counts seeds from 0; a plan may start at FIRST_SEED: its k-th seed is index k.
        self.keys = {(t.value, t.seed - plan.first_seed): t.key for t in plan.trials}
        self.results: dict[str, dict[int, float]] = {v: {} for v in self.values}
        self.started: dict[str, tuple[str, int]] = {}  # Tune trial id -> (value, seed index)
        self.running: set[str] = set()
        self.prints: dict[str, set[str]] = {v: set() for v in self.values}  # architectures

    def race(self) -> Race:
        return replay(self.values, self.results, self.rule, shared_architecture(self.prints))

    def suggest(self, trial_id: str):
        """What the race needs now, else a speculative seed; else wait, or end the search."""
        race = self.race()
        begun = set(self.started.values())
        trial = next((t for t in race.needed + race.speculative() if t not in begun), None)
        if trial is None:
            if race.finished and not self.running:
                return Searcher.FINISHED
            return None  # Tune asks again once a running trial ends
        self.started[trial_id] = trial
        self.running.add(trial_id)
        return {"trial": self.keys[trial]}

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        if trial_id not in self.started:
            return
        self.running.discard(trial_id)
        value, seed = self.started[trial_id]
        loss = (result or {}).get(keys.TEST_LOSS)
        self.results[value][seed] = math.nan if error or loss is None else float(loss)
        if not error and (result or {}).get(keys.FINGERPRINT):
            self.prints[value].add(result[keys.FINGERPRINT])

    def save(self, checkpoint_path: str):
        with open(checkpoint_path, "wb") as f:
            pickle.dump(
                {"results": self.results, "started": self.started, "prints": self.prints}, f
            )

    def restore(self, checkpoint_path: str):
        with open(checkpoint_path, "rb") as f:
            state = pickle.load(f)
        self.results, self.started = state["results"], state["started"]
        self.prints = state["prints"]
        # Trials that were running when the driver stopped are resumed by Tune under their
        # own ids; their results arrive through on_trial_complete as before.
        self.running = {t for t, (v, s) in self.started.items() if s not in self.results.get(v, {})}
