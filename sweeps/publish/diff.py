"""`make diff`: two sweeps read from MLflow, their values aligned (sweeps.judge.changes), and
everything that differs between them besides the results: base config, code, data, versions.

The use: "I changed the residual block / the loader / the GPU; did the ranking move beyond
noise?" Reads MLflow only, like `make rank`; writes diff.md and attaches it to B's run.
"""

from pathlib import Path

from sweeps.judge.changes import change_of, to_markdown
from sweeps.publish.records import Sweep, resolve
from trainers import keys, tracking
from trainers.paths import results_dir

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
    keys.HARDWARE_KIND: "hardware kind",
}


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
    for side, sweep in (("A", a), ("B", b)):
        for value in sweep.values():
            if sweep.repeated(value):
                seeds = ", ".join(map(str, sweep.repeated(value)))
                found.append(
                    f"{side} ran {value}'s seed {seeds} more than once: the diff keeps the "
                    "newest finished run of each"
                )
    return found


def diff(ref_a: str, ref_b: str, ablation: str = "") -> tuple[str, Path]:
    """The diff's Markdown, written to results/<a>-vs-<b>/diff.md and attached to B's run;
    `latest` and `previous` are of `ablation` where given."""
    a, b = Sweep.load(resolve(ref_a, ablation)), Sweep.load(resolve(ref_b, ablation))
    values = list(dict.fromkeys(a.values() + b.values()))
    text = to_markdown(a, b, [change_of(v, a, b) for v in values], differences(a, b))
    folder = results_dir() / f"{a.sweep_id}-vs-{b.sweep_id}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "diff.md"
    path.write_text(text)
    tracking.log_artifact(b.run.info.run_id, path)
    return text, path


def pooled_differences(sweeps: list[Sweep]) -> list[str]:
    """For `make rank` of several sweeps: what differs besides the base config (code, data,
    versions), so pooled seeds that are not comparable are named, not silently mixed."""
    found = []
    for other in sweeps[1:]:
        found += [
            f"{sweeps[0].sweep_id} vs {other.sweep_id}: {line}"
            for line in differences(sweeps[0], other)
            if not line.startswith("base config")
        ]
    return found
