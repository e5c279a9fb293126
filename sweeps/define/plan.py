"""What a sweep will run, built once by the command line and handed down unchanged: the trials,
each with its parsed config, and what the ranking compares them with.

`plan.json` (results/<sweep_id>/) keeps it for a resume, as flat configs; it is the only place a
plan is parsed back.
"""

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sweeps.judge.racing import Rule
from trainers.config import ExperimentConfig


def new_sweep_id(name: str) -> str:
    """<ablation>-<date>-<time>: names the sweep's results folder and its MLflow runs."""
    return f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


@dataclass(frozen=True, kw_only=True)
class Trial:
    """One trial: the value it is ranked under, its seed and the config it trains with."""

    value: str
    seed: int
    config: ExperimentConfig
    setting: str = ""  # the one change from the base ("train.lr=1e-3"); "" for the base itself
    repeat: int = 0  # the probe reruns one (value, seed) several times
    node: str = ""  # a node id to pin the trial's workers to (the probe spreads reruns)

    @property
    def key(self) -> str:
        """value/s<seed>[/r<repeat>]: names the trial in Tune and finds its MLflow run."""
        return f"{self.value}/s{self.seed}" + (f"/r{self.repeat}" if self.repeat else "")

    def to_json(self) -> dict:
        fields = {k: getattr(self, k) for k in ("value", "seed", "setting", "repeat", "node")}
        return fields | {"config": self.config.to_flat()}

    @classmethod
    def from_json(cls, fields: dict) -> "Trial":
        return cls(**{**fields, "config": ExperimentConfig.from_flat(fields["config"])})


@dataclass(frozen=True, kw_only=True)
class SweepPlan:
    """A sweep of an ablation, or a probe of one run: one Tune run either way."""

    name: str  # the ablation's name, or "probe"
    trials: tuple[Trial, ...]
    base: ExperimentConfig
    vary: str  # the varied settings, comma-joined
    baseline: str  # the value the others are compared with
    experiment: str  # the MLflow experiment
    seeds: int = 1  # seeds per value
    tags: dict[str, str] = field(default_factory=dict)  # added to the sweep and every trial
    value_tag: str = ""  # a tag that repeats each trial's value (the probe's ovat.probe)
    rule: Rule | None = None  # SEEDS=auto: the race deciding each value's seeds (trials: the most)
    # The data keys whose train split streams, decided once when the sweep starts and kept for
    # its resumes, so that a resumed trial never switches data paths (None: not decided yet).
    streamed: frozenset[str] | None = None

    def trial(self, key: str) -> Trial:
        """The trial of a Tune trial's config["trial"] (Tune's param space holds only keys:
        it replaces objects in it with object-store placeholders that callbacks cannot read)."""
        return next(t for t in self.trials if t.key == key)

    @property
    def values(self) -> list[str]:
        return list(dict.fromkeys(t.value for t in self.trials))

    @property
    def first_seed(self) -> int:
        return min(t.seed for t in self.trials)

    def summary(self) -> str:
        """The line `make plan` and `make sweep` end their plan with."""
        if self.rule:
            rule, values = self.rule, len(self.values)
            budget = f"; budget {rule.budget} trials" if rule.budget else ""
            return (
                f"ovat: {self.name}: {rule.least_trials(values)} to {rule.most_trials(values)} "
                f"trials ({values} values x {rule.min_seeds} to {rule.max_seeds} seeds, until "
                f"decided{budget})"
            )
        return (
            f"ovat: {self.name}: {len(self.trials)} trials "
            f"({len(self.values)} values x {self.seeds} seeds)"
        )

    def save(self, path: Path) -> Path:
        fields = {
            k: getattr(self, k)
            for k in ("name", "vary", "baseline", "experiment", "seeds", "tags", "value_tag")
        }
        fields |= {"base": self.base.to_flat(), "trials": [t.to_json() for t in self.trials]}
        fields["rule"] = asdict(self.rule) if self.rule else None
        fields["streamed"] = None if self.streamed is None else sorted(self.streamed)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(fields, indent=1))
        return path

    @classmethod
    def load(cls, path: Path) -> "SweepPlan":
        fields = json.loads(path.read_text())
        trials = tuple(Trial.from_json(t) for t in fields.pop("trials"))
        rule = fields.pop("rule", None)
        fields["rule"] = Rule(**rule) if rule else None
        streamed = fields.pop("streamed", None)  # absent from plans saved before it was kept
        fields["streamed"] = None if streamed is None else frozenset(streamed)
        return cls(trials=trials, base=ExperimentConfig.from_flat(fields.pop("base")), **fields)
