"""One picture per sweep: the same test images reconstructed by each value, in ranking order,
so a reader sees what a difference of 0.002 in test loss looks like."""

import math
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw

from sweeps.judge.ranking import RankRow, TrialRow
from trainers import tracking
from trainers.keys import PREVIEW_FILE
from trainers.previews import grid_row

LABEL_WIDTH = 190  # px of text left of each row
ARTIFACT = f"checkpoint/{PREVIEW_FILE}"


def preview_of(run_id: str, folder: Path) -> Image.Image | None:
    """A trial's reconstruction picture from its checkpoint artifact; None for a run without."""
    try:
        path = tracking.client().download_artifacts(run_id, ARTIFACT, str(folder))
    except Exception:  # noqa: BLE001 (older runs and failed trials have none: no picture)
        return None
    with Image.open(path) as image:
        return image.convert("RGB")


def labelled(row: Image.Image, text: str) -> Image.Image:
    out = Image.new("RGB", (LABEL_WIDTH + row.width, row.height), "white")
    out.paste(row, (LABEL_WIDTH, 0))
    ImageDraw.Draw(out).text((6, row.height // 2 - 6), text, fill="black")
    return out


def comparison(ranking: list[RankRow], trials: list[TrialRow], path: Path) -> Path | None:
    """Originals and masked inputs once, then one reconstruction row per value, best first
    (each value's lowest finished seed); None when no trial left a picture."""
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for rank in ranking:
            finished = [t for t in trials if t.value == rank.value and not math.isnan(t.test_loss)]
            if not finished:
                continue
            trial = min(finished, key=lambda t: t.seed)
            picture = preview_of(trial.run_id, Path(scratch) / trial.run_id)
            if picture is None:
                continue
            if not rows:
                rows += [labelled(grid_row(picture, 0), "original")]
                rows += [labelled(grid_row(picture, 1), "masked input")]
            text = f"{rank.rank}. {rank.value}  {trial.test_loss:.4f} (s{trial.seed})"
            rows.append(labelled(grid_row(picture, 2), text))
    if not rows:
        return None
    out = Image.new("RGB", (rows[0].width, sum(r.height for r in rows)), "white")
    top = 0
    for row in rows:
        out.paste(row, (0, top))
        top += row.height
    path.parent.mkdir(parents=True, exist_ok=True)
    out.save(path)
    return path
