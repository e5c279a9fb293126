"""What changed between two sweeps: their values aligned, the change in each mean with its
interval (paired seed by seed where both sweeps ran the same seeds), and everything that differs
between them: base config, code, data, architectures, library versions.

The use: "I changed the residual block / the loader / the GPU; did the ranking move beyond
noise?" Reads MLflow only, like `make rank`.
"""

import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from scipy import stats as scipy_stats

from sweeps import stats
from sweeps.errors import UnknownSweep
from sweeps.publish import sweep_run
from trainers import keys, tracking
from trainers.paths import results_dir

CONFIDENCE = stats.CONFIDENCE
PROVENANCE = {  # what a reader must know differs, besides the config: tag -> what it is
    "mlflow.source.git.commit": "code (git commit)",
    keys.GIT_DIRTY: "uncommitted changes",
    keys.ENV_PYTHON: "Python",
    keys.ENV_TORCH: "torch",
    keys.ENV_RAY: "Ray",
    keys.ENV_MLFLOW: "MLflow",
    "placement.cuda": "CUDA",
    "placement.cudnn": "cuDNN",
    "placement.gpu_name": "GPU",
}


@dataclass(frozen=True)
class Sweep:
    """One side of a diff: its sweep run and its trials, read from MLflow."""

    sweep_id: str
    run: object  # the sweep's MLflow run
    trials: list  # its trial runs

    @classmethod
    def load(cls, ref: str) -> "Sweep":
        run = sweep_run(ref)
        sweep_id = run.data.tags[keys.SWEEP_ID]
        return cls(sweep_id, run, tracking.sweep_runs(sweep_id))

    def losses(self, value: str) -> dict[int, float]:
        """seed -> test loss of the value's finished trials."""
        return {
            int(t.data.tags[keys.SEED]): t.data.metrics[keys.TEST_LOSS]
            for t in self.trials
            if t.data.tags.get(keys.VALUE) == value and keys.TEST_LOSS in t.data.metrics
        }

    def values(self) -> list[str]:
        return list(dict.fromkeys(t.data.tags.get(keys.VALUE, "?") for t in self.trials))

    def trial_tag(self, value: str, tag: str) -> set[str]:
        return {
            t.data.tags[tag]
            for t in self.trials
            if t.data.tags.get(keys.VALUE) == value and tag in t.data.tags
        }

    def data(self) -> set[str]:
        """The prepared data its trials read: name and digest of their dataset inputs."""
        return {
            f"{d.dataset.name} ({d.dataset.digest})"
            for t in self.trials
            for d in (t.inputs.dataset_inputs if t.inputs else [])
        }


def resolve(ref: str) -> str:
    """A sweep id, or `latest` / `previous`: the newest sweep and the one before it."""
    if ref not in ("latest", "previous"):
        return ref
    sweeps = tracking.search_runs({keys.ROLE: keys.ROLE_SWEEP})  # oldest first
    wanted = 1 if ref == "latest" else 2
    if len(sweeps) < wanted:
        raise UnknownSweep(f"no {ref} sweep in {tracking.tracking_uri()}: {len(sweeps)} sweeps")
    return sweeps[-wanted].data.tags[keys.SWEEP_ID]


def paired_interval(a: dict[int, float], b: dict[int, float]) -> tuple[float, float, float, int]:
    """(mean of b - a over common seeds, low, high, seeds) by a paired t interval."""
    seeds = sorted(set(a) & set(b))
    changes = [b[s] - a[s] for s in seeds]
    mean = statistics.fmean(changes)
    if len(changes) < 2:
        return mean, math.nan, math.nan, len(changes)
    sd = statistics.stdev(changes)
    half = (
        float(scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, len(changes) - 1))
        * sd
        / math.sqrt(len(changes))
    )
    return mean, mean - half, mean + half, len(changes)


def verdict(low: float, high: float) -> str:
    if math.isnan(low):
        return "n < 2"
    if high < 0:
        return "lower"
    if low > 0:
        return "higher"
    return "within noise"


@dataclass(frozen=True)
class Change:
    value: str
    mean_a: float
    n_a: int
    mean_b: float
    n_b: int
    change: float  # mean b - mean a; negative: b has the lower test loss
    low: float
    high: float
    test: str  # "paired (k seeds)", "Welch", or "-"
    verdict: str
    architecture: str  # "same" or "changed"


def change_of(value: str, a: Sweep, b: Sweep) -> Change:
    losses_a, losses_b = a.losses(value), b.losses(value)
    mean = lambda xs: statistics.fmean(xs.values()) if xs else math.nan
    architecture = (
        "same"
        if a.trial_tag(value, keys.FINGERPRINT) == b.trial_tag(value, keys.FINGERPRINT)
        else "changed"
    )
    if not losses_a or not losses_b:
        change, low, high, test = mean(losses_b) - mean(losses_a), math.nan, math.nan, "-"
    elif len(set(losses_a) & set(losses_b)) >= 2:
        change, low, high, seeds = paired_interval(losses_a, losses_b)
        test = f"paired ({seeds} seeds)"
    else:
        versus = stats.compare(list(losses_b.values()), list(losses_a.values()), False)
        change, low, high, test = versus.difference, versus.low, versus.high, "Welch"
    return Change(
        value,
        mean(losses_a),
        len(losses_a),
        mean(losses_b),
        len(losses_b),
        change,
        low,
        high,
        test,
        verdict(low, high) if test != "-" else "-",
        architecture,
    )


def differences(a: Sweep, b: Sweep) -> list[str]:
    """Everything other than the trials' results that is not the same in the two sweeps."""
    found = []
    params_a, params_b = a.run.data.params, b.run.data.params
    for key in sorted(set(params_a) | set(params_b)):
        if params_a.get(key) != params_b.get(key):
            found.append(f"base config `{key}`: {params_a.get(key)} -> {params_b.get(key)}")
    for tag, what in PROVENANCE.items():
        seen_a = {a.run.data.tags.get(tag)} | {t.data.tags.get(tag) for t in a.trials}
        seen_b = {b.run.data.tags.get(tag)} | {t.data.tags.get(tag) for t in b.trials}
        seen_a, seen_b = seen_a - {None}, seen_b - {None}
        if seen_a != seen_b:
            found.append(
                f"{what}: {', '.join(sorted(seen_a)) or '?'} -> {', '.join(sorted(seen_b)) or '?'}"
            )
    if a.data() != b.data():
        found.append(f"data: {', '.join(sorted(a.data()))} -> {', '.join(sorted(b.data()))}")
    return found


def _num(x: float, signed: bool = False) -> str:
    return "–" if math.isnan(x) else (f"{x:+.4f}" if signed else f"{x:.4f}")


def to_markdown(a: Sweep, b: Sweep, changes: list[Change], found: list[str]) -> str:
    lines = [
        f"### {a.sweep_id} -> {b.sweep_id}: change in test loss",
        "",
        "| value | A mean (n) | B mean (n) | Δ B - A [95% CI] | test | verdict | architecture |",
        "|---|---:|---:|---|---|---|---|",
    ]
    for c in changes:
        interval = "" if math.isnan(c.low) else f" [{c.low:+.4f}, {c.high:+.4f}]"
        lines.append(
            f"| {c.value} | {_num(c.mean_a)} ({c.n_a}) | {_num(c.mean_b)} ({c.n_b}) | "
            f"{_num(c.change, signed=True)}{interval} | {c.test} | {c.verdict} | {c.architecture} |"
        )
    lines += [
        "",
        (
            "Δ: B's mean test loss minus A's; paired over the seeds both sweeps ran where there "
            "are two or more, else Welch's t. lower / higher: the interval excludes 0."
        ),
        "",
        "What differs between A and B:",
        "",
        *(
            [f"- {line}" for line in found]
            or ["- nothing recorded: same config, code, data and versions"]
        ),
        "",
    ]
    return "\n".join(lines)


def diff(ref_a: str, ref_b: str) -> tuple[str, Path]:
    """The diff's Markdown, written to results/<a>-vs-<b>/diff.md and attached to B's run."""
    a, b = Sweep.load(resolve(ref_a)), Sweep.load(resolve(ref_b))
    values = list(dict.fromkeys(a.values() + b.values()))
    text = to_markdown(a, b, [change_of(v, a, b) for v in values], differences(a, b))
    folder = results_dir() / f"{a.sweep_id}-vs-{b.sweep_id}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "diff.md"
    path.write_text(text)
    tracking.log_artifact(b.run.info.run_id, path)
    return text, path


def pooled_differences(sweep_ids: list[str]) -> list[str]:
    """For `make rank` of several sweeps: what differs besides the base config (code, data,
    versions), so pooled seeds that are not comparable are named, not silently mixed."""
    sweeps = [Sweep.load(s) for s in sweep_ids]
    found = []
    for other in sweeps[1:]:
        found += [
            f"{sweeps[0].sweep_id} vs {other.sweep_id}: {line}"
            for line in differences(sweeps[0], other)
            if not line.startswith("base config")
        ]
    return found
