"""A trial never stays RUNNING with nothing to run it: the sweep's watchdog.

A trial that has reported nothing for longer than its bound (`FACTOR` times its longest time
between two results, at least `OVAT_WATCHDOG_FLOOR_S`), has no live Ray Train worker, and is
not waiting for resources other trials hold (the free resources could hold its workers, or no
live node could ever hold one) is ended: its Tune actor is killed, Tune records the trial as
errored and retries it from its last checkpoint within the sweep's failure budget
(`TRIAL_RETRIES`), else it fails with the watchdog's reason. A trial whose workers are alive is
never ended, only named: a long epoch is not a hang; nor is a restart queued behind running
trials.

Found on the compose cluster: a worker container killed under two trials left them RUNNING
for minutes with the cluster idle, their Train controllers dead and their Tune actors waiting.
The trial's workers are found through Ray's actor table by ownership: the Tune actor owns the
trial's `TrainController`, which owns its `RayTrainWorker`s.
"""

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import ray
import ray.tune

from sweeps.run.orphans import remove_orphans
from sweeps.run.waits import waits
from trainers.trial import worker_resources

FACTOR = 3.0  # times the trial's longest time between two results
TRIAL_RETRIES = 1  # Tune's retries of a trial that errored (from its last checkpoint)
LIVE = {"ALIVE", "PENDING_CREATION", "RESTARTING", "DEPENDENCIES_UNREADY"}


@dataclass
class Heard:
    """When a running trial was last heard from, and its longest epoch: the longest time
    between two of its results (start-up, until the first, is not an epoch)."""

    at: float
    longest_gap: float = 0.0
    results: int = 0

    def result(self, now: float) -> None:
        if self.results:
            self.longest_gap = max(self.longest_gap, now - self.at)
        self.results += 1
        self.at = now

    def restart(self, now: float) -> "Heard":
        """A rerun starts its own clock and keeps the epochs seen: its bound stays theirs."""
        return Heard(now, self.longest_gap)

    def bound(self, floor: float) -> float:
        return max(floor, FACTOR * self.longest_gap)


def owned(actors: dict, owner: dict, class_name: str) -> list[dict]:
    """Live actors of `class_name` whose owner is the process of the actor `owner`."""
    where = (owner["Address"]["NodeID"], owner["Address"]["Port"])
    return [
        a
        for a in actors.values()
        if a["ActorClassName"] == class_name
        and a["State"] in LIVE
        and (a["OwnerAddress"]["NodeID"], a["OwnerAddress"]["Port"]) == where
    ]


def workers_of(actors: dict, actor_id: str) -> tuple[int, int]:
    """(live Train controllers, live Train workers) of the trial whose Tune actor is
    `actor_id`, from Ray's actor table (`ray._private.state.actors()`)."""
    tune_actor = actors.get(actor_id)
    if tune_actor is None or tune_actor["State"] not in LIVE:
        return 0, 0
    controllers = owned(actors, tune_actor, "TrainController")
    workers = [w for c in controllers for w in owned(actors, c, "RayTrainWorker")]
    return len(controllers), len(workers)


def fits(need: dict[str, float], workers: int, nodes: list[dict[str, float]]) -> bool:
    """Could `workers` bundles of `need` be placed on these nodes' resources (first fit)?"""
    room = [dict(node) for node in nodes]
    for _ in range(workers):
        node = next((r for r in room if all(r.get(k, 0) >= v for k, v in need.items())), None)
        if node is None:
            return False
        for k, v in need.items():
            node[k] -= v
    return True


@dataclass(frozen=True)
class Verdict:
    hung: bool  # ended once silent past its bound
    why: str


def verdict(workers: int, fits_now: bool, fits_ever: bool, need: dict[str, float]) -> Verdict:
    """Why a silent trial is silent, and whether that is a hang."""
    if workers:
        return Verdict(False, f"{workers} Train workers alive: training or starting")
    if fits_now:
        return Verdict(True, f"no Train worker alive, though free resources could hold {need}")
    if not fits_ever:
        return Verdict(True, f"no Train worker alive, and no live node can hold {need}")
    return Verdict(False, f"no Train worker alive: queued for {need}, which running trials hold")


class TrialWatchdog(ray.tune.Callback):
    def __init__(self, plan, clock: Callable[[], float] = time.monotonic):
        self.plan, self.clock, self.waits = plan, clock, waits()
        self.heard: dict[str, Heard] = {}
        self.named: set[str] = set()  # trials whose silence was said once already
        self.ended: dict[str, str] = {}  # trial id -> the reason it was ended
        self.checked = 0.0
        self.orphans_failed = False

    def on_trial_start(self, iteration, trials, trial, **info):
        earlier = self.heard.get(trial.trial_id)
        now = self.clock()
        self.heard[trial.trial_id] = earlier.restart(now) if earlier else Heard(now)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.heard.setdefault(trial.trial_id, Heard(self.clock())).result(self.clock())
        self.named.discard(trial.trial_id)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.heard.pop(trial.trial_id, None)

    on_trial_error = on_trial_complete  # final: a trial Tune retries gets on_trial_recover

    def on_step_begin(self, iteration, trials, **info):
        now = self.clock()
        if now - self.checked < self.waits.watchdog_check_s:
            return
        self.checked = now
        self.remove_orphans()
        floor = self.waits.watchdog_floor_s
        silent = [
            t
            for t in trials
            if t.status == "RUNNING"
            and t.trial_id in self.heard
            and now - self.heard[t.trial_id].at > self.heard[t.trial_id].bound(floor) / 2
        ]
        if not silent:
            return
        try:  # Ray's private state API: a failure to read it must never stop the sweep
            cluster = Cluster(
                ray._private.state.actors(),
                list(ray._private.state.available_resources_per_node().values()),
                list(ray._private.state.total_resources_per_node().values()),
            )
        except Exception as error:  # noqa: BLE001
            say(f"watchdog: cannot read Ray's actor table ({error}); checking again later")
            return
        for trial in silent:
            self.check(trial, cluster, now, floor)

    def remove_orphans(self) -> None:
        """Placement groups of dead Train controllers (`sweeps.run.orphans`), which nothing
        else removes; a failure to read Ray's table is said once and the sweep goes on."""
        try:
            removed = remove_orphans()
        except Exception as error:  # noqa: BLE001 (private Ray API: never stop the sweep)
            if not self.orphans_failed:
                say(f"cannot check for orphaned placement groups: {error}")
            self.orphans_failed = True
            return
        if removed:
            say(f"removed {len(removed)} placement groups of dead Train controllers: {removed}")

    def check(self, trial, cluster: "Cluster", now: float, floor: float) -> None:
        heard = self.heard[trial.trial_id]
        actor = getattr(trial.temporary_state, "ray_actor", None)
        if actor is None:  # Tune has not placed it yet: it is pending, not running
            return
        resources = self.plan.trial(trial.config["trial"]).config.resources
        need = worker_resources(resources)
        _, workers = workers_of(cluster.actors, actor._actor_id.hex())
        found = verdict(
            workers,
            fits(need, resources.workers, cluster.free),
            fits(need, 1, cluster.total),
            need,
        )
        silent_s, name = now - heard.at, trial.config["trial"]
        if not found.hung or silent_s <= heard.bound(floor):
            if trial.trial_id not in self.named:
                self.named.add(trial.trial_id)
                say(f"{name:<22} no result for {silent_s:.0f} s: {found.why}")
            return
        reason = f"watchdog: no result for {silent_s:.0f} s and {found.why}"
        say(f"{name:<22} ended by the {reason}")
        self.ended[trial.trial_id] = reason
        self.heard[trial.trial_id] = heard.restart(now)
        ray.kill(actor)


@dataclass(frozen=True)
class Cluster:
    """What the watchdog reads from Ray once per check."""

    actors: dict  # actor id -> Ray's actor table entry
    free: list[dict[str, float]]  # per live node
    total: list[dict[str, float]]


def say(text: str) -> None:
    print(f"ovat: {text}", file=sys.stderr, flush=True)
