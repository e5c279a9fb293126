"""Follow-up runs (eval, transplant, finetune) that descend from a sweep's trials, as a table
under the ranking."""

import math
from dataclasses import dataclass

from sweeps.judge.table import loss_text
from trainers import keys, tracking


@dataclass(frozen=True)
class FollowUp:
    run_name: str
    kind: str  # eval, transplant, finetune
    source: str  # the source run's name
    val_loss: float
    test_loss: float
    notes: str


def followups(trial_run_ids: dict[str, str]) -> list[FollowUp]:
    """Follow-up runs descending from the sweep's trials, also follow-ups of follow-ups.

    trial_run_ids maps run id -> run name for the sweep's trials.
    """
    names, found = dict(trial_run_ids), []
    for run in tracking.runs_with_source():  # oldest first: sources precede what they feed
        tags, metrics = run.data.tags, run.data.metrics
        if tags.get(keys.SOURCE_RUN) not in names:
            continue
        names[run.info.run_id] = run.info.run_name
        note = []
        if "test_loss_before" in metrics:
            note.append(f"test loss before {metrics['test_loss_before']:.4f}")
        if tags.get(keys.TRAINABLE):
            note.append(f"trained: {tags[keys.TRAINABLE]}")
        if tags.get(keys.UNTRAINED):
            note.append(f"never got a gradient: {tags[keys.UNTRAINED]}")
        found.append(
            FollowUp(
                run.info.run_name,
                tags.get(keys.ROLE, "?"),
                names[tags[keys.SOURCE_RUN]],
                metrics.get(keys.VAL_LOSS, math.nan),
                metrics.get(keys.TEST_LOSS, math.nan),
                "; ".join(note),
            )
        )
    return found


def followups_markdown(rows: list[FollowUp]) -> str:
    if not rows:
        return ""
    lines = [
        "#### Follow-up runs",
        "",
        "| run | kind | source | val loss | test loss | notes |",
        "|---|---|---|---:|---:|---|",
    ]
    lines += [
        f"| {r.run_name} | {r.kind} | {r.source} | {loss_text(r.val_loss)} | "
        f"{loss_text(r.test_loss)} | {r.notes} |"
        for r in rows
    ]
    return "\n".join([*lines, ""])
