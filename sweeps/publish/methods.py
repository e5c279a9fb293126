"""The methods paragraph of a sweep, written beside its ranking as `methods.md`.

Every number in it is read from what the sweep logged: the sweep run's params (the base config
every trial shared), its tags (what varied, the baseline, the SEEDS=auto rule, the commit) and
its trials (values, seeds, hardware). A reviewer can paste it; nothing in it is typed by hand.
"""

from data.config import DataConfig
from data.registry import kind, protocol
from data.splits import Splitter
from sweeps.judge.racing import Rule
from sweeps.judge.ranking import TrialRow
from sweeps.judge.stability import RESAMPLES
from trainers import keys
from trainers.config import ConfigError, ExperimentConfig

FILE = "methods.md"


def paragraph(
    params: dict[str, str], tags: dict[str, str], rows: list[TrialRow], rule: Rule | None
) -> str:
    """The whole paragraph: design, seeds, training, data, metric, statistics, code. `params`
    and `tags` are the sweep run's; `rows` its trials."""
    try:
        cfg = ExperimentConfig.from_flat(params)
    except ConfigError as error:  # a sweep logged by an older ovat: say so, keep the rest
        cfg, unread = ExperimentConfig(), f" (its settings could not be read: {error})"
    else:
        unread = ""
    sentences = [
        design(tags, rows) + unread,
        seeds(cfg, rows, rule),
        training(cfg),
        data(cfg.data),
        metric(cfg.data),
        statistics(rule),
        code(tags, rows),
    ]
    return " ".join(sentences) + "\n"


def counted(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def listed(items: list[str]) -> str:
    return ", ".join(items[:-1]) + f" and {items[-1]}" if len(items) > 1 else "".join(items)


def design(tags: dict[str, str], rows: list[TrialRow]) -> str:
    values = list(dict.fromkeys(r.value for r in rows))
    baseline = tags.get(keys.BASELINE, "")
    against = f", against the baseline {baseline}" if baseline else ", without a baseline"
    return (
        f"We varied one setting at a time: {tags.get(keys.VARY, '?')} took the values "
        f"{listed(values)}{against}; every other setting was the same for all trials."
    )


def seeds(cfg: ExperimentConfig, rows: list[TrialRow], rule: Rule | None) -> str:
    numbers = sorted({r.seed for r in rows})
    per_value = {r.value: set() for r in rows}
    for row in rows:
        per_value[row.value].add(row.seed)
    counts = sorted({len(s) for s in per_value.values()})
    count = counted(counts[-1], "seed")
    if len(counts) > 1:
        count = f"{counts[0]} to {count}"
    how = (
        f"raced, {rule.min_seeds} to {rule.max_seeds} per value as below"
        if rule
        else "a fixed number per value"
    )
    numbers_text = listed([str(s) for s in numbers])
    return (
        f"Each value was trained with {count} ({how}; "
        f"{'seed' if len(numbers) == 1 else 'seeds'} {numbers_text}). A seed (train.seed) sets "
        f"{SEEDED[kind(cfg.data.dataset)](cfg.data)} were the same for every value and seed."
    )


# What a seed sets, and what stays fixed across seeds, by the data's kind.
SEEDED = {
    "image": lambda d: (
        "the model's initialisation, the order of the training batches and the training masks; "
        f"the data split (data.split_seed = {d.split_seed}) and the evaluation masks "
        f"(data.eval_mask_seed = {d.eval_mask_seed}, fixed per image)"
    ),
    "text": lambda d: (
        "the model's initialisation, the order of the training windows and dropout; the data "
        f"split (data.split_seed = {d.split_seed}) and the evaluation windows"
    ),
}


def training(cfg: ExperimentConfig) -> str:
    train, model, resources = cfg.train, cfg.model, cfg.resources
    device = "GPU" if resources.use_gpu else "CPU"
    bf16 = train.precision == "bf16" or (train.precision == "auto" and resources.use_gpu)
    return (
        f"Each trial trained for {train.epochs} epochs with AdamW (learning rate {train.lr:g}, "
        f"weight decay {train.weight_decay:g}, batch size {train.batch_size} per worker, "
        f"{counted(resources.workers, 'worker')} on {device}, {'bf16 autocast' if bf16 else 'fp32'}); "
        f"{MODEL_TEXT[model.family](model)}."
    )


MODEL_TEXT = {
    "autoencoder": lambda m: (
        f"the model had a {m.embed_dim}-wide bottleneck, a codebook (or FFN hidden width) of "
        f"{m.codebook_size} and {m.res_blocks} residual blocks ({m.residual} form)"
    ),
    "gpt": lambda m: (
        f"the model was a byte-level GPT of {counted(m.layers, 'block')}, width {m.embed_dim}, "
        f"{m.heads} heads and rotary positions, with the bottleneck in every block's FFN slot "
        f"(a codebook, or FFN hidden width, of {m.codebook_size})"
    ),
}


def data(cfg: DataConfig) -> str:
    if kind(cfg.dataset) == "text":
        return text_data(cfg)
    limit = f"a seeded subset of {cfg.limit} images per split" if cfg.limit else "every image"
    how = "" if cfg.dataset == "sample" else f" ({cfg.resize})"  # sample is cut, not resized
    return (
        f"Data: {cfg.dataset} at {cfg.resolution} x {cfg.resolution} px{how}, {limit}; "
        f"split: {split_text(cfg)}."
    )


def split_text(cfg: DataConfig) -> str:
    if cfg.dataset == "sample":
        return "tiles of each photo to train/val/test 80/10/10 by a fixed permutation"
    return Splitter(protocol(cfg), cfg.split_seed).describe()


def text_data(cfg: DataConfig) -> str:
    limit = f"a seeded subset of {cfg.limit} windows per split" if cfg.limit else "every window"
    return (
        f"Data: {cfg.dataset}, each file sent to train/val/test 80/10/10 by a hash of its path "
        f"(seed {cfg.split_seed}), each split's files joined and cut into non-overlapping "
        f"windows of {cfg.context + 1} bytes, {limit}."
    )


def metric(cfg: DataConfig) -> str:
    if kind(cfg.dataset) == "text":
        return (
            "The loss is the cross-entropy of each next byte in nats per token (bits per byte "
            "in the table: nats / ln 2), on the same val and test windows for every trial. We "
            "report the test loss, mean ± sample standard deviation over seeds, and chose the "
            "best value on validation loss."
        )
    return (
        f"The encoder's input had {cfg.mask_ratio:.0%} of its {cfg.patch_size} px patches "
        "zeroed; the loss is the mean squared error of the reconstruction against the unmasked "
        "image. We report the test loss, mean ± sample standard deviation over seeds, and chose "
        "the best value on validation loss."
    )


def statistics(rule: Rule | None) -> str:
    ranks = (
        "the values tied with the best are those not separated from it at a family-wise 5%, "
        f"Holm-corrected; P(best) is the share of {RESAMPLES:,} draws of every mean from its t "
        "distribution in which the value ranks first."
    )
    if rule is None:
        return (
            "Each value was compared with the baseline by Welch's t-test (95% interval of the "
            f"difference of means, unequal variances); {ranks}"
        )
    budget = f", and at most {rule.budget} trials in all" if rule.budget else ""
    return (
        f"Seeds were raced (F-Race): every value ran {rule.min_seeds} seeds, and each round "
        "gave every value not yet shown worse than another one more seed, up to "
        f"{rule.max_seeds}{budget}. After each round every pair of racing values was compared "
        "by a paired t-test on per-seed differences (one architecture) or Welch's t-test "
        "(otherwise), as a group-sequential test whose level was spent over the rounds by "
        f"Hwang-Shih-DeCani alpha spending (gamma = {rule.gamma:g}), with a family-wise error "
        f"rate of {rule.alpha:.0%} over all pairs by Holm's step-down; the error rates were "
        "checked by simulation (make race-sim). Intervals against the baseline are those of "
        f"the race's test at the level it spent; {ranks}"
    )


def code(tags: dict[str, str], rows: list[TrialRow]) -> str:
    commit = tags.get("mlflow.source.git.commit", "") or "unknown"
    dirty = ""
    if tags.get(keys.GIT_DIRTY) == "true":
        dirty = " with uncommitted changes (code.diff on the sweep's run)"
    kinds = sorted({r.hardware_kind for r in rows if r.hardware_kind})
    hardware = f"; hardware: {listed(kinds)}" if kinds else ""
    return (
        f"Code: ovat at commit {commit[:12]}{dirty}; torch {tags.get(keys.ENV_TORCH, '?')}, "
        f"Ray {tags.get(keys.ENV_RAY, '?')}, MLflow {tags.get(keys.ENV_MLFLOW, '?')}{hardware}."
    )
