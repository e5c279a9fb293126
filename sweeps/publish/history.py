"""What earlier sweeps in the tracking store say about a planned one: the training rate of
finished trials that ran the same model the same way (for its cost), and the spread between
seeds of earlier sweeps of the same ablation (for what its seeds can resolve)."""

import statistics

from sweeps.define.cost import EVAL_SPEEDUP, Rate
from sweeps.judge.power import Spread, pooled_spread
from trainers import keys, tracking
from trainers.config import ExperimentConfig

# The settings a trial's speed depends on, besides every model.* setting.
SPEED_SETTINGS = (
    "data.resolution",
    "data.mask_ratio",
    "data.mask_patch",
    "data.stream",
    "train.batch_size",
    "train.precision",
    "train.channels_last",
    "train.compile",
    "train.matmul_precision",
    "train.deterministic",
    "resources.workers",
    "resources.cpus_per_worker",
    "resources.gpus_per_worker",
)


def speed_key(params: dict[str, str]) -> tuple:
    return tuple(
        sorted(
            (k, str(v)) for k, v in params.items() if k.startswith("model.") or k in SPEED_SETTINGS
        )
    )


def device_kind(config: ExperimentConfig) -> str:
    """The kind of device a planned trial trains on, as its run's placement tags name it."""
    return "cuda" if config.resources.use_gpu else "cpu"


def run_rate(run, eval_share: float) -> float | None:
    """A finished trial's images/s over its whole epochs (training and scoring), as the rate
    `trial_seconds` divides by; None where the run lacks what it needs."""
    metrics, params = run.data.metrics, run.data.params
    needed = (keys.IMAGES_PER_S, "train_s")
    if run.info.end_time is None or any(m not in metrics for m in needed):
        return None
    epochs = int(params.get("train.epochs", 0) or 0)
    wall = (run.info.end_time - run.info.start_time) / 1000 - metrics.get("startup_s", 0.0)
    train_images = metrics[keys.IMAGES_PER_S] * metrics["train_s"]
    if epochs < 1 or wall <= 0 or train_images <= 0:
        return None
    per_epoch = wall / epochs
    return (train_images + eval_share * train_images / EVAL_SPEEDUP) / per_epoch


def history_rates(trials, eval_share: float) -> dict[str, Rate]:
    """Per planned trial key, the median rate of earlier finished trials with its speed key on
    its device kind; trials with none are left out."""
    wanted = {t.key: (speed_key(t.config.to_params()), device_kind(t.config)) for t in trials}
    found: dict[tuple, list[tuple[float, float]]] = {}
    runs = tracking.search_runs({keys.ROLE: keys.ROLE_TRIAL}) if tracking.store_exists() else []
    for run in runs:
        if run.info.status != "FINISHED":
            continue
        kind = (
            "cuda" if run.data.tags.get(f"{keys.PLACEMENT}device", "").startswith("cuda") else "cpu"
        )
        rate = run_rate(run, eval_share)
        if rate is not None:
            startup = run.data.metrics.get("startup_s", 0.0)
            found.setdefault((speed_key(run.data.params), kind), []).append((rate, startup))
    rates = {}
    for key, wanted_key in wanted.items():
        matches = found.get(wanted_key)
        if matches:
            rates[key] = Rate(
                statistics.median(r for r, _ in matches),
                statistics.median(s for _, s in matches),
                "history",
                f"{len(matches)} earlier trial{'s' if len(matches) != 1 else ''}",
            )
    return rates


def seed_spread(ablation: str) -> Spread | None:
    """The pooled seed-to-seed spread of test loss in earlier sweeps of `ablation`."""
    if not tracking.store_exists():
        return None
    runs = tracking.search_runs({keys.ABLATION: ablation, keys.ROLE: keys.ROLE_TRIAL})
    groups: dict[tuple[str, str], list[float]] = {}
    for run in runs:
        if run.info.status == "FINISHED" and keys.TEST_LOSS in run.data.metrics:
            group = (run.data.tags.get(keys.SWEEP_ID, ""), run.data.tags.get(keys.VALUE, ""))
            groups.setdefault(group, []).append(run.data.metrics[keys.TEST_LOSS])
    sweeps = {sweep for sweep, _ in groups}
    trials = sum(len(g) for g in groups.values())
    return pooled_spread(
        list(groups.values()), f"{len(sweeps)} earlier sweeps of {ablation} ({trials} trials)"
    )
