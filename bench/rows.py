"""A benchmark's output: rows of ratios measured in one run, each against its target and
anchor, written as JSON (with the absolute figures, for reference only) and a Markdown table."""

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from trainers.paths import results_dir


@dataclass(frozen=True)
class Row:
    name: str
    value: float  # a ratio (or a share) measured in this run
    target: float
    higher_is_better: bool  # the value must be >= target (else <= target)
    anchor: str  # what the value is measured against
    detail: dict = field(default_factory=dict)  # absolute figures: this machine's, noisy

    @property
    def meets(self) -> bool:
        return self.value >= self.target if self.higher_is_better else self.value <= self.target

    def record(self) -> dict:
        return asdict(self) | {"meets": self.meets}


def markdown(rows: list[Row]) -> str:
    lines = [
        "| benchmark | value | target | meets | anchor | detail |",
        "|---|---:|---|---|---|---|",
    ]
    for row in rows:
        sign = ">=" if row.higher_is_better else "<="
        detail = ", ".join(f"{k} {fmt(v)}" for k, v in row.detail.items())
        lines.append(
            f"| {row.name} | {row.value:.3f} | {sign} {row.target:g} | "
            f"{'yes' if row.meets else '**no**'} | {row.anchor} | {detail} |"
        )
    return "\n".join(lines) + "\n"


def fmt(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def write(rows: list[Row], name: str = "") -> dict[str, Path]:
    """results/bench/<timestamp>[-name].json and .md."""
    folder = results_dir() / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    stem = time.strftime("%Y%m%d-%H%M%S") + (f"-{name}" if name else "")
    paths = {"json": folder / f"{stem}.json", "markdown": folder / f"{stem}.md"}
    paths["json"].write_text(json.dumps([row.record() for row in rows], indent=1))
    paths["markdown"].write_text(markdown(rows))
    return paths
