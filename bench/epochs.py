"""How far must the default sweep train? Per epoch: every value's val loss, the ranking it gives,
how much that ranking moved since the epoch before, and the baseline's reconstructions.

Each value trains in a process of its own with the trial's own parts (`trainers.loop.build`,
`train_epoch`, the fixed-mask `Evaluator`, `reconstruction_grid`), without Ray, one torch
thread per process and one process per core, as the sweep's 1-CPU trials run. The seconds are
this machine's: a default sweep's epoch costs about `s / epoch` x values / cores.
"""

import argparse
import io
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

SNAPSHOTS = (1, 2, 4, 8, 16, 32)  # epochs whose reconstructions are kept


@dataclass
class Curve:
    """One value's training, epoch by epoch."""

    value: str
    val_loss: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    pictures: dict[int, bytes] = field(default_factory=dict)  # epoch -> PNG of the test images


def train_value(job: tuple[str, dict, int]) -> Curve:
    """Train one value for `epochs`, scoring val after every epoch."""
    import torch

    from trainers.config import ExperimentConfig
    from trainers.evaluation import Evaluator, as_tensor, load_splits
    from trainers.loop import build
    from trainers.previews import PREVIEW_IMAGES, reconstruction_grid
    from trainers.steps import epoch_seed, seed_epoch_globals, train_epoch

    value, overrides, epochs = job
    torch.set_num_threads(1)
    cfg = ExperimentConfig().with_overrides({**overrides, "model.bottleneck": value})
    device = torch.device("cpu")
    splits = load_splits(cfg)
    images = as_tensor(splits["train"])
    val, test = Evaluator(splits["val"], cfg), Evaluator(splits["test"], cfg)
    model, optimizer = build(cfg, device)
    curve = Curve(value)
    for epoch in range(epochs):
        started = time.perf_counter()
        seed_epoch_globals(cfg.train.seed, epoch)
        generator = torch.Generator().manual_seed(epoch_seed(cfg.train.seed, epoch))
        train_epoch(model, optimizer, images, cfg.data, cfg.train.batch_size, generator, device)
        curve.seconds.append(time.perf_counter() - started)
        curve.val_loss.append(val(model, device)[0])
        if epoch + 1 in SNAPSHOTS or epoch + 1 == epochs:
            shown, keep = test.first(PREVIEW_IMAGES)
            curve.pictures[epoch + 1] = reconstruction_grid(
                model, shown, keep, cfg.data.patch_size, device
            )
    return curve


def order(curves: list[Curve], epoch: int) -> list[str]:
    """The values by val loss after `epoch` epochs, best first."""
    return [c.value for c in sorted(curves, key=lambda c: c.val_loss[epoch - 1])]


def moved(before: list[str], after: list[str]) -> int:
    """Pairs of values whose order flipped (the Kendall distance between two rankings)."""
    position = {v: i for i, v in enumerate(after)}
    return sum(
        1 for i, a in enumerate(before) for b in before[i + 1 :] if position[a] > position[b]
    )


def table(curves: list[Curve], epochs: int) -> str:
    rows = []
    for epoch in range(1, epochs + 1):
        ranked = order(curves, epoch)
        flips = "" if epoch == 1 else str(moved(order(curves, epoch - 1), ranked))
        final = moved(ranked, order(curves, epochs))
        seconds = sum(c.seconds[epoch - 1] for c in curves) / len(curves)
        rows.append(
            [str(epoch), f"{seconds:.1f}"]
            + [f"{c.val_loss[epoch - 1]:.4f}" for c in curves]
            + [" > ".join(ranked[:3]), flips, str(final)]
        )
    header = ["epoch", "s / epoch"] + [c.value for c in curves]
    header += [
        "best three",
        "pairs flipped since last epoch",
        "pairs away from the last epoch's order",
    ]
    lines = [header, ["---:"] * 2 + ["---:"] * len(curves) + ["---", "---:", "---:"], *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def picture(curve: Curve, path: Path) -> Path:
    """Original, masked, then the value's reconstructions at each kept epoch, labelled."""
    from PIL import Image, ImageDraw

    grids = {
        e: Image.open(io.BytesIO(png)).convert("RGB") for e, png in sorted(curve.pictures.items())
    }
    first = next(iter(grids.values()))
    band = first.height // 3  # each grid: original, masked, reconstruction
    label = 150
    rows = [("original", first.crop((0, 0, first.width, band))),
            ("masked input", first.crop((0, band, first.width, 2 * band)))]  # fmt: skip
    rows += [
        (f"{curve.value}, epoch {e}", g.crop((0, 2 * band, g.width, 3 * band)))
        for e, g in grids.items()
    ]
    canvas = Image.new("RGB", (label + first.width, band * len(rows)), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (text, row) in enumerate(rows):
        canvas.paste(row, (label, i * band))
        draw.text((6, i * band + band // 2 - 6), text, fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path


def main(argv: list[str] | None = None) -> None:
    from sweeps.define import ablation as ablations
    from trainers.paths import results_dir

    parser = argparse.ArgumentParser(prog="python -m bench.epochs", description=__doc__)
    parser.add_argument("--ablation", default="bottleneck")
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--procs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.procs < 1:
        parser.error(f"--epochs and --procs must be >= 1, got {args.epochs} and {args.procs}")
    ablation = ablations.load(args.ablation)
    plan = ablations.plan(ablation)
    overrides = {**plan.base.to_flat(), "train.epochs": args.epochs}
    values = plan.values
    print(f"bench.epochs: {len(values)} values x {args.epochs} epochs, {args.procs} at a time")
    started = time.perf_counter()
    jobs = [(v, overrides, args.epochs) for v in values]
    done: dict[str, Curve] = {}
    with multiprocessing.get_context("spawn").Pool(args.procs) as pool:
        for curve in pool.imap_unordered(train_value, jobs):
            done[curve.value] = curve
            took = time.perf_counter() - started
            print(
                f"bench.epochs: {curve.value} trained ({len(done)} of {len(values)}, {took:.0f} s)"
            )
    curves = [done[v] for v in values]
    took = time.perf_counter() - started
    print(table(curves, args.epochs))
    baseline = next(c for c in curves if c.value == plan.baseline)
    path = picture(baseline, results_dir() / "epochs" / "epochs.png")
    print(f"\nbench.epochs: {took:.0f} s in all; wrote {path}")


if __name__ == "__main__":
    main()
