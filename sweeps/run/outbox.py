"""Trial writes to MLflow that survive a tracking outage: queued in order, kept on disk while
the store cannot be reached, delivered when it answers again.

The sweep's callback hands every write for a trial to an `Outbox` instead of calling MLflow.
Normally each write is delivered at once. When the store is unreachable, trials keep training;
the writes stay queued, in order, in `results/<sweep_id>/outbox.jsonl` (rewritten atomically
after every event), and the queue is retried at most every `RETRY_EVERY_S`. The sweep waits
for the store before it builds the ranking, and a resume delivers a queue a killed driver left.

Delivery is at least once, and every write is idempotent: metrics keep the timestamp of the
result they came from (MLflow ignores an identical metric row), tags and artifacts overwrite,
and opening a trial's run first looks it up by its trial key, so a retried create finds the
run a lost response had created.
"""

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests
from mlflow.exceptions import MlflowException, RestException

from trainers import keys, tracking

OUTBOX_FILE = "outbox.jsonl"  # results/<sweep_id>/outbox.jsonl, present only while writes wait
REJECTED_FILE = "outbox-rejected.jsonl"  # writes the store refused (a bug, not an outage)
RETRY_EVERY_S = 10.0  # while the store is down: how often an event retries the queue
WAIT_ENV = "OVAT_TRACKING_WAIT_S"  # how long the end of a sweep waits for the store
DEFAULT_WAIT_S = 600.0
TRANSIENT_CODES = {"INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"}
NETWORK_ERRORS = (ConnectionError, TimeoutError, requests.ConnectionError, requests.Timeout)


def is_outage(error: Exception) -> bool:
    """Could this write succeed later unchanged? Connection failures, timeouts and 5xx answers
    can; a request the store answered and refused (4xx, a bad value) never will, and neither
    will a local file that is missing or a full disk (OSErrors that are not the network)."""
    if isinstance(error, RestException):
        return (error.get_http_status_code() or 500) >= 500
    if isinstance(error, MlflowException):
        return error.error_code in TRANSIENT_CODES
    return isinstance(error, NETWORK_ERRORS)


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


def fail(run_id: str, reason: str) -> None:
    tracking.set_tags(run_id, {keys.ERROR: reason})
    tracking.end_run(run_id, failed=True)


# What each queued write does to its trial's run ("open" creates the run and comes first; its
# params are a write of their own, so an outage between the two loses neither).
WRITES: dict[str, Callable[..., None]] = {
    "params": tracking.log_params,
    "dataset": tracking.log_dataset,
    "metrics": tracking.log_metrics,
    "points": tracking.log_metric_points,
    "tags": tracking.set_tags,
    "complete": complete,
    "fail": fail,
}


@dataclass
class Outbox:
    folder: Path  # results/<sweep_id>
    pending: list[dict] = field(default_factory=list)
    runs: dict[str, str] = field(default_factory=dict)  # trial key -> MLflow run id
    down_since: float | None = None
    next_try: float = 0.0
    loaded: bool = False

    @property
    def path(self) -> Path:
        return self.folder / OUTBOX_FILE

    def open_run(self, key_tags: dict, params: dict, **run) -> None:
        """Queue the creation (or, on resume, the lookup) of a trial's run, then its params."""
        self.add("open", key_tags, **run)
        self.add("params", key_tags, params=params)

    def write(self, op: str, key_tags: dict, **fields) -> None:
        if op not in WRITES:
            raise ValueError(f"unknown outbox write {op!r}; valid: {', '.join(WRITES)}")
        self.add(op, key_tags, **fields)

    def add(self, op: str, key_tags: dict, **fields) -> None:
        self.load()
        entry = {"op": op, "key_tags": key_tags, **fields}
        self.pending.append(entry)
        if self.resting():
            self.append(entry)  # O(1) per event during an outage; a flush rewrites the file
        else:
            self.flush()

    def resting(self) -> bool:
        """Down, and not yet time to retry."""
        return self.down_since is not None and time.monotonic() < self.next_try

    def load(self) -> None:
        """Writes a killed driver left on disk go first (a restored callback starts empty)."""
        if self.loaded:
            return
        self.loaded = True
        if self.path.is_file():
            self.pending = read_entries(self.path) + self.pending

    def flush(self, force: bool = False) -> bool:
        """Deliver queued writes in order until one fails for an outage; True when none wait."""
        self.load()
        if not self.pending:
            return True
        if not force and self.resting():
            return False
        delivered = 0
        while self.pending:
            entry = self.pending[0]
            try:
                self.deliver(entry)
            except (MlflowException, OSError, LookupError) as error:  # requests' are OSErrors
                if not is_outage(error):
                    self.reject(entry, error)
                    self.pending.pop(0)
                    continue
                self.went_down(error)
                break
            self.pending.pop(0)
            delivered += 1
        if not self.pending and self.down_since is not None:
            down_for = time.monotonic() - self.down_since
            say(f"tracking store back after {down_for:.0f} s; buffered writes delivered")
            self.down_since = None
        self.save()
        return not self.pending

    def deliver(self, entry: dict) -> None:
        fields = {k: v for k, v in entry.items() if k not in ("op", "key_tags")}
        key = entry["key_tags"][keys.TRIAL_KEY]
        if entry["op"] == "open":
            self.runs[key] = tracking.find_run(entry["key_tags"]) or tracking.create_run(**fields)
            return
        if key not in self.runs:  # a driver restarted since the run was opened
            found = tracking.find_run(entry["key_tags"])
            if found is None:
                raise LookupError(f"no MLflow run has the trial tags {entry['key_tags']}")
            self.runs[key] = found
        WRITES[entry["op"]](self.runs[key], **fields)

    def went_down(self, error: Exception) -> None:
        self.next_try = time.monotonic() + RETRY_EVERY_S
        if self.down_since is None:
            self.down_since = time.monotonic()
            reason = str(error).splitlines()[0][:200]
            say(
                f"tracking store {tracking.tracking_uri()} unreachable ({reason}); trials keep "
                f"training, their writes wait in {self.path}"
            )

    def reject(self, entry: dict, error: Exception) -> None:
        """A write the store refuses would fail forever: kept aside, named, and skipped."""
        say(f"tracking store refused a {entry['op']} write ({error}); kept in {REJECTED_FILE}")
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / REJECTED_FILE, "a") as file:
            file.write(json.dumps({**entry, "error": str(error)}) + "\n")

    def save(self) -> None:
        """The queue on disk, replaced atomically; no file when nothing waits."""
        if not self.pending:
            self.path.unlink(missing_ok=True)
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        with open(partial, "w") as file:
            file.writelines(json.dumps(entry) + "\n" for entry in self.pending)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, self.path)

    def append(self, entry: dict) -> None:
        with open(self.path, "a") as file:
            file.write(json.dumps(entry) + "\n")
            file.flush()
            os.fsync(file.fileno())

    def drain(self, wait_s: float | None = None, poll_s: float = 5.0) -> None:
        """Block until every queued write is delivered, or raise TrackingUnavailable."""
        wait_s = float(os.environ.get(WAIT_ENV, DEFAULT_WAIT_S)) if wait_s is None else wait_s
        deadline = time.monotonic() + wait_s
        last_said = 0.0
        while not self.flush(force=True):
            if time.monotonic() >= deadline:
                raise tracking.TrackingUnavailable(
                    f"tracking store {tracking.tracking_uri()} still unreachable after "
                    f"{wait_s:.0f} s; {len(self.pending)} writes kept in {self.path}"
                )
            if time.monotonic() - last_said >= 30:
                last_said = time.monotonic()
                say(
                    f"waiting up to {deadline - time.monotonic():.0f} s more for the tracking "
                    f"store ({len(self.pending)} writes waiting; {WAIT_ENV} sets the limit)"
                )
            time.sleep(poll_s)


def read_entries(path: Path) -> list[dict]:
    """The saved queue; a last line cut short by a kill mid-append is named and dropped."""
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            say(f"{path}:{number}: dropped a write cut short by a kill: {line[:80]!r}")
    return entries


def say(text: str) -> None:
    print(f"ovat: {text}", file=sys.stderr, flush=True)
