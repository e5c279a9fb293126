"""A sweep through ovat against the plain Ray Tune script a user would write instead.

The script (`plain_sweep`) trains the same model on the same prepared data with the same
seeds, epochs, batch and CPUs per trial, inside Tune's trial actor, logging to MLflow with
Ray's own `MLflowLoggerCallback`: no TorchTrainer, no validation or test scores, no
checkpoints, no ranking. Both run back to back on one Ray instance, the script first (it pays
any cold start). The ratio is what ovat's per-trial machinery (a TorchTrainer's controller and
worker processes, evaluation, checkpoints, the audit, the ranking) costs on a short sweep.
"""

import time

import ray
import ray.tune
import torch
from ray.air.integrations.mlflow import MLflowLoggerCallback

from bench.rows import Row
from sweeps.define import ablation as ablations
from sweeps.define.plan import SweepPlan
from sweeps.run.estimate import estimate
from trainers import tracking
from trainers.config import ExperimentConfig
from trainers.evaluation import as_tensor, load_splits
from trainers.steps import epoch_seed, train_epoch

ABLATION = "bottleneck"  # the default sweep, at one epoch: 7 short trials
EPOCHS = 1


def plain_trial(config: dict, train) -> None:
    """The hand-written trainable: build, train, report the loss per epoch."""
    from trainers.loop import build  # the model and AdamW exactly as a trial builds them

    cfg: ExperimentConfig = config["config"]
    torch.set_num_threads(cfg.resources.threads)
    images = as_tensor(train)
    model, optimizer = build(cfg, torch.device("cpu"))
    for epoch in range(cfg.train.epochs):
        generator = torch.Generator().manual_seed(epoch_seed(cfg.train.seed, epoch))
        sums = train_epoch(
            model, optimizer, images, cfg.data, cfg.train.batch_size, generator, torch.device("cpu")
        )
        ray.tune.report({"train_loss": sums.mean, "epoch": epoch + 1})


def plain_sweep(plan: SweepPlan, storage: str) -> float:
    """Seconds for the plan's trials as a plain Tune script (one grid over their configs)."""
    configs = [trial.config for trial in plan.trials]
    cpus = configs[0].resources.cpus_per_worker
    train = load_splits(configs[0], ("train",))["train"]  # every trial's data variant is one
    started = time.monotonic()
    tuner = ray.tune.Tuner(
        ray.tune.with_resources(ray.tune.with_parameters(plain_trial, train=train), {"CPU": cpus}),
        param_space={"config": ray.tune.grid_search(configs)},
        run_config=ray.tune.RunConfig(
            name=f"plain-{time.strftime('%Y%m%d-%H%M%S')}",
            storage_path=storage,
            callbacks=[MLflowLoggerCallback(tracking.tracking_uri(), experiment_name="plain-tune")],
            verbose=0,
        ),
    )
    results = tuner.fit()
    if results.errors:
        raise SystemExit(f"bench: the plain Tune script failed: {results.errors[0]}")
    return time.monotonic() - started


def startup_rows(storage: str) -> list[Row]:
    """ovat's `make sweep ABLATION=bottleneck EPOCHS=1` against the plain script."""
    from sweeps.run.tuner import run_plan

    plan = ablations.plan(ablations.load(ABLATION), {"train.epochs": EPOCHS})
    if len({trial.config.data for trial in plan.trials}) != 1:
        raise SystemExit(f"bench: {ABLATION}'s trials differ in data; the plain script has one")
    plain_s = plain_sweep(plan, storage)
    predicted = estimate(plan).cost  # as `make plan` says it, just before the sweep
    started = time.monotonic()
    published = run_plan(plan)
    ovat_s = time.monotonic() - started
    counted = sum(row.n for row in published.ranking)
    if counted != len(plan.trials):
        raise SystemExit(f"bench: the ranking counted {counted} of {len(plan.trials)} trials")
    return [
        Row(
            "sweep: ovat / plain Ray Tune script",
            ovat_s / plain_s,
            1.5,
            False,
            f"the same {len(plan.trials)} trials ({ABLATION}, {EPOCHS} epoch) as a hand-written "
            "Tune script: no TorchTrainer, eval, checkpoints or ranking",
            {"ovat_s": ovat_s, "plain_s": plain_s, "trials": len(plan.trials)},
        ),
        Row(
            "cost estimate: off by (x)",
            max(ovat_s / predicted.wall_s, predicted.wall_s / ovat_s),
            1.3,
            False,
            f"the same sweep's wall time as `make plan` predicted it (rates from {predicted.sources})",
            {"predicted_s": predicted.wall_s, "actual_s": ovat_s, "at_once": predicted.at_once},
        ),
    ]
