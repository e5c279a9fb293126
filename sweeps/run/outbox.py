"""Trial writes to MLflow that survive a tracking outage: queued in order, kept on disk while
the store cannot be reached, delivered when it answers again.

The sweep's callback hands every write for a trial to an `Outbox` instead of calling MLflow.
A sweep's outbox delivers from a courier thread of its own (`background=True`): Tune's event
loop only queues a write (one append to `results/<sweep_id>/outbox.jsonl`) and never waits on
the network; once Tune's callback waited 24 s per event on a dead server, and no trial's result
moved meanwhile. One thread delivers, in order; to a tracking server it sends up to `writers`
writes at once, each to another run, so the order of writes per run is kept while a server's
tens of milliseconds per request overlap (docs/cluster.md, "At scale"). When the
store is unreachable, trials keep training; the writes stay queued in that file, and the queue
is retried every `RETRY_EVERY_S`. The sweep waits for the store before it builds the ranking,
and a resume delivers a queue a killed driver left.

Delivery is at least once, and every write is idempotent: metrics keep the timestamp of the
result they came from (MLflow ignores an identical metric row), tags and artifacts overwrite,
and opening a trial's run first looks it up by its trial key, so a retried create finds the
run a lost response had created.
"""

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from mlflow.exceptions import MlflowException

from sweeps.run.outages import is_outage, say
from sweeps.run.trial_writes import WRITES
from sweeps.run.waits import tracking_writers, waits
from sweeps.run.write_order import LOOK_AHEAD, next_window, run_key
from trainers import tracking

OUTBOX_FILE = "outbox.jsonl"  # results/<sweep_id>/outbox.jsonl, present only while writes wait
REJECTED_FILE = "outbox-rejected.jsonl"  # writes the store refused (a bug, not an outage)
RETRY_EVERY_S = 10.0  # while the store is down: how often an event retries the queue


@dataclass
class Outbox:
    folder: Path  # results/<sweep_id>
    background: bool = False  # a courier thread delivers; writers only queue
    writers: int = 1  # writes in flight at once, each to another run (see `window`)
    pending: list[dict] = field(default_factory=list)
    runs: dict[str, str] = field(default_factory=dict)  # run_key(key tags) -> MLflow run id
    down_since: float | None = None
    next_try: float = 0.0
    loaded: bool = False

    def __post_init__(self) -> None:
        self.lock = threading.RLock()  # the queue and its file
        self.delivering = threading.Lock()  # one deliverer at a time: writes stay in order
        self.wake, self.stopping = threading.Event(), threading.Event()
        self.courier: threading.Thread | None = None
        self.unkept = False  # a write could not be appended to the file
        self.pool: ThreadPoolExecutor | None = None

    @property
    def path(self) -> Path:
        return self.folder / OUTBOX_FILE

    def open_run(self, key_tags: dict, params: dict, **run) -> None:
        """Queue the creation (or, on resume, the lookup) of a run, then its params. `run`:
        create_run's arguments, where `parent_key` (the key tags of a run opened before) may
        stand for `parent_id`."""
        self.add("open", key_tags, **run)
        self.add("params", key_tags, params=params)

    def write(self, op: str, key_tags: dict, **fields) -> None:
        if op not in WRITES:
            raise ValueError(f"unknown outbox write {op!r}; valid: {', '.join(WRITES)}")
        self.add(op, key_tags, **fields)

    def add(self, op: str, key_tags: dict, **fields) -> None:
        entry = {"op": op, "key_tags": key_tags, **fields}
        with self.lock:
            self.load()
            self.pending.append(entry)
            if self.background or self.resting():
                self.keep(entry)
        if self.background:
            self.start_courier()
            self.wake.set()
        elif not self.resting():
            self.flush()

    def start_courier(self) -> None:
        if self.courier is None or not self.courier.is_alive():
            self.stopping.clear()
            self.courier = threading.Thread(target=self.deliver_until_closed, daemon=True)
            self.courier.name = f"ovat-outbox-{self.folder.name}"
            self.courier.start()

    def deliver_until_closed(self) -> None:
        """The courier: deliver whenever woken, and retry every RETRY_EVERY_S while down."""
        while not self.stopping.is_set():
            resting_for = self.next_try - time.monotonic() if self.down_since else None
            self.wake.wait(timeout=None if resting_for is None else max(resting_for, 0.0))
            self.wake.clear()
            if self.stopping.is_set():
                return
            try:
                self.flush()
            except OSError as error:  # the queue file (a full disk): the queue stays in memory
                say(f"cannot rewrite {self.path} ({error}); its writes wait in memory")
                self.went_down(error)

    def close(self, timeout: float | None = None) -> None:
        """Stop the courier after its delivery in flight (the caller flushes what waits)."""
        self.stopping.set()
        self.wake.set()
        if self.courier is not None:
            self.courier.join(timeout)
        if self.pool is not None:
            self.pool.shutdown(wait=False)
            self.pool = None

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
        """Deliver queued writes in order (per run) until one fails for an outage; True when
        none wait.
        Writers may queue meanwhile: only this method removes entries, from the head."""
        with self.delivering:
            with self.lock:
                self.load()
                if not self.pending:
                    return True
                if not force and self.resting():
                    return False
            while window := self.window():
                if not self.deliver_window(window):
                    break
            with self.lock:
                if not self.pending and self.down_since is not None:
                    down_for = time.monotonic() - self.down_since
                    say(f"tracking store back after {down_for:.0f} s; buffered writes delivered")
                    self.down_since = None
                self.save()
                return not self.pending

    def window(self) -> list[dict]:
        with self.lock:
            head = self.pending[: self.writers * LOOK_AHEAD]
        return next_window(head, self.writers)

    def deliver_window(self, window: list[dict]) -> bool:
        """Deliver a window's writes, side by side when there are several; the delivered and
        the refused leave the queue, an outage's stay at their places. False on an outage."""
        if len(window) == 1:
            errors = [self.attempt(window[0])]
        else:
            if self.pool is None:
                self.pool = ThreadPoolExecutor(self.writers, thread_name_prefix="ovat-outbox")
            errors = list(self.pool.map(self.attempt, window))
        outage, done = None, []
        for entry, error in zip(window, errors, strict=True):
            if error is not None and is_outage(error):
                outage = outage or error
                continue
            if error is not None:
                self.reject(entry, error)
            done.append(entry)
        with self.lock:
            for entry in done:
                self.pending.remove(entry)
        if outage is not None:
            self.went_down(outage)
        return outage is None

    def attempt(self, entry: dict) -> Exception | None:
        try:
            self.deliver(entry)
        except (MlflowException, OSError, LookupError) as error:  # requests' are OSErrors
            return error
        return None

    def deliver(self, entry: dict) -> None:
        fields = {k: v for k, v in entry.items() if k not in ("op", "key_tags")}
        if entry["op"] == "open":
            if "parent_key" in fields:  # nested under a run this queue opened before
                fields["parent_id"] = self.run_id(fields.pop("parent_key"))
            found = tracking.find_run(entry["key_tags"], fields["experiment"])
            self.runs[run_key(entry["key_tags"])] = found or tracking.create_run(**fields)
            return
        WRITES[entry["op"]](self.run_id(entry["key_tags"]), **fields)

    def run_id(self, key_tags: dict) -> str:
        """The run opened with these key tags: known, or found (a driver restarted since)."""
        key = run_key(key_tags)
        if key not in self.runs:
            found = tracking.find_run(key_tags)
            if found is None:
                raise LookupError(f"no MLflow run has the tags {key_tags}")
            self.runs[key] = found
        return self.runs[key]

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

    def keep(self, entry: dict) -> None:
        """On disk before delivery, O(1) per event (a flush rewrites the file); a file that
        cannot be written (a full disk) leaves the write queued in memory, said once."""
        try:
            self.append(entry)
        except OSError as error:
            if not self.unkept:
                say(f"cannot append to {self.path} ({error}); writes wait in memory")
            self.unkept = True

    def append(self, entry: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as file:
            file.write(json.dumps(entry) + "\n")
            file.flush()
            os.fsync(file.fileno())

    def drain(self, wait_s: float | None = None, poll_s: float = 5.0) -> None:
        """Block until every queued write is delivered, or raise TrackingUnavailable."""
        wait_s = waits().tracking_wait_s if wait_s is None else wait_s
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
                    f"waiting up to {deadline - time.monotonic():.0f} s more for the tracking store "
                    f"({len(self.pending)} writes waiting; OVAT_TRACKING_WAIT_S sets the limit)"
                )
            time.sleep(poll_s)


SWEEP_OUTBOXES: dict[Path, Outbox] = {}


def sweep_outbox(folder: Path) -> Outbox:
    """The process's one outbox of a sweep folder: one courier per queue file, writes in order."""
    folder = Path(folder).resolve()
    if folder not in SWEEP_OUTBOXES:
        writers = tracking_writers(tracking.tracking_uri())
        SWEEP_OUTBOXES[folder] = Outbox(folder, background=True, writers=writers)
    return SWEEP_OUTBOXES[folder]


def read_entries(path: Path) -> list[dict]:
    """The saved queue; a last line cut short by a kill mid-append is named and dropped."""
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            say(f"{path}:{number}: dropped a write cut short by a kill: {line[:80]!r}")
    return entries
