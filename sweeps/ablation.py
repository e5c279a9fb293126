"""Ablation files: a base experiment plus the settings that vary, expanded one change at a time.

```yaml
description: what the ablation asks
base: {train.epochs: 2}            # dotted keys (or nested mappings) over the defaults
vary: {model.bottleneck: [vq, ffn]}  # one or more settings and their values
baseline: vq                         # the value the others are compared with
seeds: 1                             # seeds 0..n-1 per value, unless SEEDS= says otherwise
```

A file with `probe: {repeats: 3, deterministic: true}` instead of `vary` is a placement probe of
its base config (see `sweeps/probe.py`): no source run needed.

Several varied settings still give OVAT trials, never the grid: the base once, then each
setting's other values one at a time.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from trainers.config import ConfigError, ExperimentConfig

ABLATIONS_DIR = Path(__file__).parent / "ablations"
KEYS = {"description", "base", "vary", "baseline", "seeds", "probe"}
PROBE_KEYS = {"repeats", "deterministic"}


class AblationError(ValueError):
    pass


@dataclass(frozen=True)
class Ablation:
    name: str
    description: str
    base: dict[str, Any]
    vary: dict[str, list]
    baseline: str
    seeds: int
    probe: dict[str, Any] | None = None  # a placement probe of the base config instead of vary


@dataclass(frozen=True)
class TrialSpec:
    """One trial: the value label it is ranked under, its seed and its full flat config."""

    value: str
    seed: int
    config: dict[str, Any]
    repeat: int = 0  # the probe reruns one (value, seed) several times
    node: str = ""  # a node id to pin the trial's workers to (the probe spreads reruns)

    @property
    def key(self) -> str:
        return f"{self.value}/s{self.seed}" + (f"/r{self.repeat}" if self.repeat else "")


def available() -> list[str]:
    return sorted(p.stem for p in ABLATIONS_DIR.glob("*.yaml"))


def probe_files() -> list[str]:
    return [
        name
        for name in available()
        if "probe" in (yaml.safe_load((ABLATIONS_DIR / f"{name}.yaml").read_text()) or {})
    ]


def flatten(mapping: dict, prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in mapping.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat |= flatten(value, f"{dotted}.")
        else:
            flat[dotted] = value
    return flat


def load(name: str) -> Ablation:
    """A name in sweeps/ablations/, or the path of a .yaml file anywhere (its stem names it)."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else ABLATIONS_DIR / f"{name}.yaml"
    if name.endswith((".yaml", ".yml")) and not path.is_file():
        raise AblationError(f"no ablation file {name}")
    if not path.is_file():
        raise AblationError(f"unknown ablation {name!r}; valid: {', '.join(available())}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise AblationError(f"{path}{where}: malformed YAML: {getattr(error, 'problem', error)}")
    return parse(path.stem, raw, path)


def parse(name: str, raw: dict, path: Path) -> Ablation:
    if not isinstance(raw, dict):
        raise AblationError(f"{path}: needs a mapping with keys {', '.join(sorted(KEYS))}")
    extra = sorted(set(raw) - KEYS)
    if extra:
        raise AblationError(f"{path}: unknown key {extra[0]!r}; valid: {', '.join(sorted(KEYS))}")
    if "probe" in raw:
        return parse_probe(name, raw, path)
    if not isinstance(raw.get("vary"), dict) or not raw["vary"]:
        raise AblationError(f"{path}: needs a 'vary' mapping of setting -> list of values")
    base, vary = flatten(raw.get("base") or {}), raw["vary"]
    for key, values in vary.items():
        if not isinstance(values, list) or not values:
            raise AblationError(f"{path}: vary.{key} must be a non-empty list of values")
    ablation = Ablation(
        name,
        str(raw.get("description", "")),
        base,
        vary,
        str(raw.get("baseline", "")),
        int(raw.get("seeds", 1)),
    )
    labels = [label for label, _ in value_configs_or_error(ablation, path)]
    if ablation.baseline and baseline_label(ablation) not in labels:
        raise AblationError(
            f"{path}: baseline {ablation.baseline!r} is not a varied value; "
            f"valid: {', '.join(labels)}"
        )
    return ablation


def parse_probe(name: str, raw: dict, path: Path) -> Ablation:
    probe = raw["probe"]
    if not isinstance(probe, dict) or "vary" in raw:
        raise AblationError(
            f"{path}: 'probe' is a mapping of {', '.join(sorted(PROBE_KEYS))}, "
            "and takes the place of 'vary'"
        )
    extra = sorted(set(probe) - PROBE_KEYS)
    if extra:
        raise AblationError(
            f"{path}: unknown probe key {extra[0]!r}; valid: {', '.join(sorted(PROBE_KEYS))}"
        )
    ablation = Ablation(
        name, str(raw.get("description", "")), flatten(raw.get("base") or {}), {}, "", 1, probe
    )
    try:
        base_config(ablation, {})
    except ConfigError as error:
        raise AblationError(f"{path}: {error}") from None
    return ablation


def value_configs_or_error(ablation: Ablation, path: Path) -> list[tuple[str, ExperimentConfig]]:
    try:
        return value_configs(ablation, {})
    except ConfigError as error:
        raise AblationError(f"{path}: {error}") from None


def base_config(ablation: Ablation, overrides: dict[str, Any]) -> ExperimentConfig:
    return ExperimentConfig().with_overrides({**ablation.base, **overrides})


def value_configs(
    ablation: Ablation, overrides: dict[str, Any]
) -> list[tuple[str, ExperimentConfig]]:
    """(label, config) per varied value, OVAT; one setting: its values are the labels."""
    base = base_config(ablation, overrides)
    if len(ablation.vary) == 1:
        [(key, values)] = ablation.vary.items()
        return [(str(v), base.with_overrides({key: v})) for v in values]
    flat = base.to_flat()
    changes = [
        (key, v)
        for key, values in ablation.vary.items()
        for v in values
        if str(v) != str(flat[key])
    ]
    return [("base", base)] + [(f"{k}={v}", base.with_overrides({k: v})) for k, v in changes]


def expand(
    ablation: Ablation, overrides: dict[str, Any], seeds: int, first_seed: int = 0
) -> list[TrialSpec]:
    """Every (value, seed) trial; seeds first_seed..first_seed+seeds-1 set train.seed.

    A later rerun with new seeds (FIRST_SEED=3) can then be pooled with the first sweep.
    """
    return [
        TrialSpec(label, seed, cfg.with_overrides({"train.seed": seed}).to_flat())
        for label, cfg in value_configs(ablation, overrides)
        for seed in range(first_seed, first_seed + seeds)
    ]


def baseline_label(ablation: Ablation) -> str:
    return ablation.baseline if len(ablation.vary) == 1 else "base"
