"""What each write an `Outbox` queues does to its trial's MLflow run. Every one is idempotent:
delivery is at least once."""

from collections.abc import Callable
from pathlib import Path

from trainers import keys, tracking


def complete(run_id: str, diverged: str = "", checkpoint: str = "") -> None:
    """End a trial's run: FAILED with the divergence reason, or FINISHED with its checkpoint.
    A run already FINISHED was skipped on resume and is left as it is."""
    if tracking.run_status(run_id) == "FINISHED":
        return
    if diverged:
        tracking.set_tags(run_id, {keys.ERROR: diverged})
        tracking.end_run(run_id, failed=True)
        return
    if checkpoint:
        if not Path(checkpoint).is_dir():  # MLflow would upload nothing and say nothing
            raise FileNotFoundError(f"the trial's checkpoint {checkpoint} is gone")
        tracking.log_artifacts(run_id, Path(checkpoint), "checkpoint")
        preview = Path(checkpoint) / keys.PREVIEW_FILE
        if preview.is_file():  # also as an image: the run page shows it
            tracking.log_image(run_id, preview, "reconstructions")
    tracking.delete_tag(run_id, keys.ERROR)  # a stop before a resume is no longer the story
    tracking.end_run(run_id)


def points(run_id: str, points: list, timestamp_ms: int) -> None:
    """A metric's history at many steps, [[name, step, value], ...], as queues written before
    "result" hold it."""
    tracking.log_result(run_id, {}, 0, timestamp_ms, points)


def fail(run_id: str, reason: str) -> None:
    tracking.set_tags(run_id, {keys.ERROR: reason})
    tracking.end_run(run_id, failed=True)


# What each queued write does to its trial's run ("open" creates the run and comes first; its
# params are a write of their own, so an outage between the two loses neither). "points" and a
# result's "tags" were written apart before "result": a queue a driver left is still delivered.
WRITES: dict[str, Callable[..., None]] = {
    "params": tracking.log_params,
    "dataset": tracking.log_dataset,
    "metrics": tracking.log_metrics,
    "points": points,
    "tags": tracking.set_tags,
    "result": tracking.log_result,  # a trial's reported result: one request
    "complete": complete,
    "fail": fail,
}
