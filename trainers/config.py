"""One experiment config composed of each component's own, flattening to dotted MLflow params.

`ExperimentConfig.from_flat(cfg.to_flat())` is `cfg`, also when every value arrives as a
string from MLflow: the config logged is the config that ran. Unknown keys and values that do
not parse are errors that name the key and what is valid.
"""

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from data.config import DataConfig
from data.registry import DATASETS, UnknownDataset, check_dataset, kind
from models.bottlenecks import BOTTLENECKS
from models.config import ModelConfig
from trainers.fastpath import MATMUL_PRECISIONS, PRECISIONS, SWITCHES

# `resources.cpu_isa`: the CPU instruction set a trial's kernels may use, highest first;
# `native` is the CPU's own (trainers.hardware forces the others).
CPU_ISAS = ("native", "avx512", "avx2", "default")


# What each model family reads: the autoencoder images, the GPT text (its byte windows).
FAMILY_DATA = {"autoencoder": "image", "gpt": "text"}


class ConfigError(ValueError):
    """A config the user gave that cannot run; the message names the key and what is valid."""


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """The optimisation of one trial, and how its steps compute."""

    epochs: int = 2  # passes over the train split (the group ran 10 at 256 px on 4 GPUs)
    batch_size: int = 64  # per worker (the group used 256 per GPU at 256 px)
    lr: float = 3e-4  # AdamW learning rate, the group's
    weight_decay: float = 0.01  # AdamW's default decoupled decay
    seed: int = 0  # seeds init, shuffling and train masks: a rerun repeats the trial
    deterministic: bool = False  # torch.use_deterministic_algorithms and cuDNN flags
    max_failures: int = 2  # worker-group restarts from the last checkpoint before a trial fails
    log_every: int = 10  # steps between points of the per-step loss curve (0: epochs only)
    precision: str = "auto"  # bf16 autocast or fp32; auto: bf16 on CUDA, fp32 on CPU
    channels_last: str = "auto"  # on, off; auto: on for CUDA
    compile: str = "auto"  # torch.compile the training step's model: on, off; auto: on for CUDA
    matmul_precision: str = "highest"  # fp32 matmuls: highest, high (TF32), medium (the group's)

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"train.lr must be > 0, got {self.lr}")
        for name in ("max_failures", "log_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        for name, valid in (
            ("precision", PRECISIONS),
            ("channels_last", SWITCHES),
            ("compile", SWITCHES),
            ("matmul_precision", MATMUL_PRECISIONS),
        ):
            if getattr(self, name) not in valid:
                raise ValueError(
                    f"train.{name} must be one of {', '.join(valid)}, got {getattr(self, name)!r}"
                )
        if self.weight_decay < 0:
            raise ValueError(f"train.weight_decay must be >= 0, got {self.weight_decay}")


@dataclass(frozen=True, kw_only=True)
class ResourcesConfig:
    """What one trial asks of the cluster: its data-parallel workers and their CPUs and GPUs."""

    workers: int = 1  # Ray Train workers (data-parallel ranks) per trial
    cpus_per_worker: float = 1.0  # 0.5 packs two small trials per core; threads: max(1, int)
    gpus_per_worker: float = 0.0  # 0: CPU; 0.25 packs four trials on one GPU
    gpu_stand_in: str = ""  # a custom Ray resource asked for instead of GPU; trains on CPU
    cpu_isa: str = "native"  # a lower CPU instruction set, for the probe's hardware kinds

    def __post_init__(self):
        if self.workers < 1:
            raise ValueError(f"resources.workers must be >= 1, got {self.workers}")
        if not self.cpus_per_worker > 0:
            raise ValueError(f"resources.cpus_per_worker must be > 0, got {self.cpus_per_worker}")
        if self.gpus_per_worker < 0:
            raise ValueError(f"resources.gpus_per_worker must be >= 0, got {self.gpus_per_worker}")
        if self.cpu_isa not in CPU_ISAS:
            raise ValueError(
                f"resources.cpu_isa must be one of {', '.join(CPU_ISAS)}, got {self.cpu_isa!r}"
            )

    @property
    def use_gpu(self) -> bool:
        """Train on CUDA: GPUs asked for, and real ones (no stand-in resource)."""
        return self.gpus_per_worker > 0 and not self.gpu_stand_in

    @property
    def gpu_resource(self) -> str:
        """The Ray resource `gpus_per_worker` is drawn from: GPU, or the stand-in (loopback
        multi-node tests and CPU clusters, where a custom resource marks the would-be GPUs)."""
        return self.gpu_stand_in or "GPU"

    @property
    def threads(self) -> int:
        """Torch threads per worker: its whole CPUs, at least one (no oversubscription)."""
        return max(1, int(self.cpus_per_worker))


SECTIONS = {
    "model": ModelConfig,
    "data": DataConfig,
    "train": TrainConfig,
    "resources": ResourcesConfig,
}


@dataclass(frozen=True, kw_only=True)
class ExperimentConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)

    def __post_init__(self):
        if self.model.bottleneck not in BOTTLENECKS:
            raise ConfigError(
                f"unknown model.bottleneck {self.model.bottleneck!r}; valid: "
                f"{', '.join(sorted(BOTTLENECKS))}"
            )
        try:
            check_dataset(self.data.dataset)
        except UnknownDataset as error:
            raise ConfigError(f"data.dataset: {error}") from None
        wanted, family = FAMILY_DATA[self.model.family], self.model.family
        if kind(self.data.dataset) != wanted:
            valid = ", ".join(d for d in DATASETS if kind(d) == wanted)
            raise ConfigError(
                f"model.family {family} reads {wanted} data, but data.dataset "
                f"{self.data.dataset!r} is {kind(self.data.dataset)}; valid: {valid}"
            )

    def to_flat(self) -> dict[str, Any]:
        """{'model.bottleneck': 'vq', 'train.lr': 0.0003, ...}: every field, dotted."""
        return {
            f"{section}.{key}": value
            for section in SECTIONS
            for key, value in dataclasses.asdict(getattr(self, section)).items()
        }

    @property
    def global_batch_size(self) -> int:
        """Images per optimizer step over all data-parallel workers: what `train.lr` is tuned
        for (the group: 256 per GPU x 4 GPUs = 1024 at lr 3e-4)."""
        return self.train.batch_size * self.resources.workers

    def to_params(self) -> dict[str, Any]:
        """What a run logs: every field, dotted, and the derived settings a reader needs."""
        return {**self.to_flat(), **{key: get(self) for key, get in DERIVED.items()}}

    @classmethod
    def from_flat(cls, flat: dict[str, Any]) -> "ExperimentConfig":
        """Parse dotted keys (values typed or strings); missing keys keep their defaults, and
        derived ones (logged beside the config) are recomputed, not read."""
        return cls().with_overrides({k: v for k, v in flat.items() if k not in DERIVED})

    def with_overrides(self, overrides: dict[str, Any]) -> "ExperimentConfig":
        """A copy with the given dotted keys replaced; only their values are parsed."""
        changed: dict[str, dict[str, Any]] = {}
        for key, value in overrides.items():
            changed.setdefault(key.partition(".")[0], {})[key.partition(".")[2]] = parse_key(
                key, value
            )
        try:
            sections = {
                section: dataclasses.replace(getattr(self, section), **values)
                for section, values in changed.items()
            }
        except ValueError as error:
            raise ConfigError(str(error)) from None
        return dataclasses.replace(self, **sections)

    def get(self, key: str) -> Any:
        """The value of one dotted key."""
        section, _, name = key.partition(".")
        return getattr(getattr(self, section), name)

    def changes_from(self, other: "ExperimentConfig") -> dict[str, Any]:
        """The dotted keys whose values differ from `other`'s, with this config's values."""
        mine, theirs = self.to_flat(), other.to_flat()
        return {key: value for key, value in mine.items() if theirs[key] != value}


# Logged with every run, never set: computed from the config.
DERIVED = {"train.global_batch_size": lambda cfg: cfg.global_batch_size}


def field_types() -> dict[str, Any]:
    """{'train.lr': float, ...}: the type every dotted key parses to."""
    return {
        f"{section}.{f.name}": f.type
        for section, section_cls in SECTIONS.items()
        for f in dataclasses.fields(section_cls)
    }


def parse_key(key: str, value: Any) -> Any:
    """One dotted key's value, parsed to its field's type; an unknown key lists the valid ones."""
    types_by_key = field_types()
    if key not in types_by_key:
        raise ConfigError(f"unknown config key {key!r}; valid: {', '.join(types_by_key)}")
    return parse_value(key, value, types_by_key[key])


def valid_keys() -> list[str]:
    return list(field_types())


def _field_type(annotation: Any) -> type:
    """The runtime type of a field annotation ('int' or int; Optional is not used here)."""
    if isinstance(annotation, str):
        return {"int": int, "float": float, "str": str, "bool": bool}[annotation]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation):
        raise TypeError(f"unsupported config annotation {annotation}")
    return annotation


def parse_value(key: str, value: Any, annotation: Any) -> Any:
    """Coerce value to the field's type; strings come from MLflow params and the command line."""
    kind = _field_type(annotation)
    try:
        if kind is bool:
            return _parse_bool(value)
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        if kind is int and isinstance(value, str):
            return int(value.strip())
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected {kind.__name__}, got {value!r}") from None


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError(value)
