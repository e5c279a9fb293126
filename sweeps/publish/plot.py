"""A strip plot of test loss per value: every seed a dot, the mean a bar, in ranking order."""

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on cluster nodes
import matplotlib.pyplot as plt
import numpy as np

from sweeps.judge.ranking import RankRow, TrialRow


def strip_plot(ranking: list[RankRow], rows: list[TrialRow], path: Path, title: str) -> Path:
    order = [r.value for r in ranking]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(order) + 1.5), 3.8), dpi=120)
    jitter = np.random.default_rng(0)  # fixed: the same sweep always draws the same picture
    for x, value in enumerate(order):
        losses = [r.test_loss for r in rows if r.value == value and not math.isnan(r.test_loss)]
        if not losses:
            continue
        offsets = jitter.uniform(-0.12, 0.12, len(losses)) if len(losses) > 1 else [0.0]
        ax.scatter(x + np.asarray(offsets), losses, s=22, alpha=0.8, color="tab:blue", zorder=3)
        ax.hlines(np.mean(losses), x - 0.28, x + 0.28, color="black", linewidth=2, zorder=4)
    ax.set_xticks(range(len(order)), order, rotation=30, ha="right")
    ax.set_ylabel("test loss (MSE)")
    ax.set_title(title, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
