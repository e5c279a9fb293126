"""Ablation files: a base experiment plus the settings that vary, planned one change at a time.

```yaml
description: what the ablation asks
preset: tiny                         # optional: a named config under the base (trainers.presets)
base: {train.epochs: 2}              # dotted keys (or nested mappings) over the defaults
vary: {model.bottleneck: [vq, ffn]}  # one or more settings and their values
baseline: vq                         # the value the others are compared with
seeds: 1                             # seeds 0..n-1 per value, unless SEEDS= says otherwise
```

A file with `probe: {repeats: 3, deterministic: true}` instead of `vary` is a placement probe of
its base config (see `sweeps/probe.py`): no source run needed.

Several varied settings still give OVAT trials, never the grid: the base once, then each
setting's other values one at a time. Values are compared after parsing with their setting's
type (`3e-4` is the float 0.0003): a value equal to the base is the base, and a value listed
twice is an error.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sweeps.define.plan import SweepPlan, Trial
from sweeps.judge.racing import Rule
from trainers.config import ConfigError, ExperimentConfig, parse_key
from trainers.presets import preset_overrides

ABLATIONS_DIR = Path(__file__).parents[1] / "ablations"
KEYS = {"description", "preset", "base", "vary", "baseline", "seeds", "probe"}
PROBE_KEYS = {"repeats", "deterministic"}
BASE_LABEL = "base"  # the label of the unchanged base when several settings vary


class AblationError(ValueError):
    pass


@dataclass(frozen=True, kw_only=True)
class Ablation:
    name: str
    source: str  # the file it came from, or "<name> (in code)": every error names it
    description: str = ""
    preset: str = "default"
    base: dict[str, Any] = field(default_factory=dict)
    vary: dict[str, list] = field(default_factory=dict)
    baseline: str = ""
    seeds: int = 1
    probe: dict[str, Any] | None = None  # a placement probe of the base config instead of vary

    @classmethod
    def from_dict(cls, name: str, raw: Any, source: str = "") -> "Ablation":
        """Check an ablation given as a mapping (a file's contents, or built in code)."""
        source = source or f"{name} (in code)"
        if not isinstance(raw, dict):
            raise AblationError(f"{source}: needs a mapping with keys {', '.join(sorted(KEYS))}")
        extra = sorted(set(raw) - KEYS)
        if extra:
            raise AblationError(
                f"{source}: unknown key {extra[0]!r}; valid: {', '.join(sorted(KEYS))}"
            )
        seeds = raw.get("seeds", 1)
        if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
            raise AblationError(f"{source}: seeds must be an integer >= 1, got {seeds!r}")
        ablation = cls(
            name=name,
            source=source,
            description=str(raw.get("description", "")),
            preset=str(raw.get("preset", "default")),
            base=flatten(raw.get("base") or {}),
            vary=raw.get("vary") or {},
            baseline=str(raw.get("baseline", "")),
            seeds=seeds,
            probe=raw.get("probe"),
        )
        return ablation.checked("vary" in raw)

    def checked(self, has_vary: bool) -> "Ablation":
        if self.probe is not None:
            if not isinstance(self.probe, dict) or has_vary:
                raise AblationError(
                    f"{self.source}: 'probe' is a mapping of {', '.join(sorted(PROBE_KEYS))}, "
                    "and takes the place of 'vary'"
                )
            extra = sorted(set(self.probe) - PROBE_KEYS)
            if extra:
                raise AblationError(
                    f"{self.source}: unknown probe key {extra[0]!r}; "
                    f"valid: {', '.join(sorted(PROBE_KEYS))}"
                )
        elif not isinstance(self.vary, dict) or not self.vary:
            raise AblationError(f"{self.source}: needs a 'vary' mapping of setting -> values")
        for key, values in self.vary.items():
            if not isinstance(values, list) or not values:
                raise AblationError(f"{self.source}: vary.{key} must be a non-empty list")
        plan(self)  # every value parses, none repeats, the baseline is a planned value
        return self


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
    is_path = name.endswith((".yaml", ".yml"))
    path = Path(name) if is_path else ABLATIONS_DIR / f"{name}.yaml"
    if not path.is_file():
        if is_path:
            raise AblationError(f"no ablation file {name}")
        raise AblationError(f"unknown ablation {name!r}; valid: {', '.join(available())}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise AblationError(f"{path}{where}: malformed YAML: {getattr(error, 'problem', error)}")
    return Ablation.from_dict(path.stem, raw, str(path))


def base_config(
    ablation: Ablation, overrides: dict[str, Any] | None = None, preset: str = ""
) -> ExperimentConfig:
    """Defaults, then the preset (PRESET= replaces the file's), the file's base, the overrides.
    An error in the file names the file; one on the command line does not."""
    chosen = preset_overrides(preset) if preset else {}  # PRESET=: the user's error
    try:
        if not preset:
            chosen = preset_overrides(ablation.preset)
        from_file = ExperimentConfig().with_overrides({**chosen, **ablation.base})
    except ConfigError as error:
        raise AblationError(f"{ablation.source}: {error}") from None
    return from_file.with_overrides(overrides or {})


def parsed_values(ablation: Ablation, key: str) -> list[Any]:
    """The values of one varied setting, parsed; a value listed twice is an error."""
    try:
        values = [parse_key(key, v) for v in ablation.vary[key]]
    except ConfigError as error:
        raise AblationError(f"{ablation.source}: vary: {error}") from None
    for i, value in enumerate(values):
        if value in values[:i]:
            raise AblationError(
                f"{ablation.source}: vary.{key} lists {ablation.vary[key][i]!r} twice "
                f"(as {value!r}); each value is one trial"
            )
    return values


def value_configs(ablation: Ablation, base: ExperimentConfig) -> list[tuple[str, str, Any]]:
    """(label, setting, config) per planned value, one change at a time."""
    try:
        if len(ablation.vary) == 1:
            [key] = ablation.vary
            return [
                (str(text), f"{key}={text}", base.with_overrides({key: value}))
                for text, value in zip(ablation.vary[key], parsed_values(ablation, key))
            ]
        changes = [
            (f"{key}={text}", base.with_overrides({key: value}))
            for key in ablation.vary
            for text, value in zip(ablation.vary[key], parsed_values(ablation, key))
            if value != base.get(key)  # equal to the base's value: that trial is the base
        ]
    except ConfigError as error:
        raise AblationError(f"{ablation.source}: {error}") from None
    return [(BASE_LABEL, "", base)] + [(label, label, cfg) for label, cfg in changes]


def resolve_baseline(ablation: Ablation, base: ExperimentConfig, labels: list[str]) -> str:
    """The label the ranking compares with: the file's `baseline`, matched after parsing, or
    `base` when several settings vary and none is named. Never silently another one."""
    wanted = ablation.baseline
    if not wanted:
        return BASE_LABEL if len(ablation.vary) > 1 else ""
    if wanted in labels:
        return wanted
    matches = set()
    for key in ablation.vary:
        try:
            value = parse_key(key, wanted)
        except ConfigError:
            continue
        if len(ablation.vary) > 1 and value == base.get(key):
            matches.add(BASE_LABEL)
        for text, parsed in zip(ablation.vary[key], parsed_values(ablation, key)):
            if parsed == value:
                label = str(text) if len(ablation.vary) == 1 else f"{key}={text}"
                matches.add(label if label in labels else BASE_LABEL)
    if len(matches) == 1:
        return matches.pop()
    why = "names several planned values" if matches else "is not a planned value"
    raise AblationError(f"{ablation.source}: baseline {wanted!r} {why}; valid: {', '.join(labels)}")


def plan(
    ablation: Ablation,
    overrides: dict[str, Any] | None = None,
    seeds: int | None = None,
    first_seed: int = 0,
    preset: str = "",
    rule: Rule | None = None,
) -> SweepPlan:
    """Every (value, seed) trial of the ablation, seeds first_seed.. setting train.seed, so a
    later rerun with new seeds (FIRST_SEED=3) can be pooled with the first sweep. With a rule
    (SEEDS=auto) the trials are every seed the race may ask for: rule.max_seeds per value."""
    base = base_config(ablation, overrides, preset)
    seeds = rule.max_seeds if rule else seeds or ablation.seeds
    values = value_configs(ablation, base) if ablation.vary else [(BASE_LABEL, "", base)]
    trials = tuple(
        Trial(
            value=label,
            seed=seed,
            setting=setting,
            config=cfg.with_overrides({"train.seed": seed}),
        )
        for label, setting, cfg in values
        for seed in range(first_seed, first_seed + seeds)
    )
    labels = [label for label, _, _ in values]
    return SweepPlan(
        name=ablation.name,
        trials=trials,
        base=base,
        vary=",".join(ablation.vary),
        baseline=resolve_baseline(ablation, base, labels) if ablation.vary else "",
        experiment=f"ovat-{ablation.name}",
        seeds=seeds,
        rule=rule,
    )
