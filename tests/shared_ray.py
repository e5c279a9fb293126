"""The shared Ray instance is left as it was found: every CPU free after each test that used it.

Leftovers of one test's sweep (a placement group or an actor that outlived its driver or its
trial) hold CPUs of the instance every later integration test shares, and each later sweep then
waits for them until its time limit. In CI (the stop of 2026-12-01) the tests after the SIGTERM
resume test failed in a way consistent with that, at 900 s each, and the run hit its deadline
with no word of what was held.
The check below waits for the CPUs to come back, else names what holds them, removes the held
placement groups so that the tests after it can run, and fails the test that leaked.
"""

import time

import ray

from sweeps.run.orphans import HELD, Table, handle, placement_groups
from sweeps.run.watchdog import LIVE

IDLE_WAIT_S = 60.0  # Tune ends its trials' actors within seconds of `fit` returning
POLL_S = 0.5
NONE_HELD = 1e-9  # CPUs held at or below this are none (float sums of fractional CPUs)


def held_cpus() -> float:
    return ray.cluster_resources().get("CPU", 0.0) - ray.available_resources().get("CPU", 0.0)


def wait_until_idle(timeout_s: float) -> float:
    """The CPUs still held after waiting up to `timeout_s` for them (0 when all are free)."""
    deadline = time.monotonic() + timeout_s
    while (held := held_cpus()) > NONE_HELD and time.monotonic() < deadline:
        time.sleep(POLL_S)
    return held if held > NONE_HELD else 0.0


def holders() -> list[str]:
    """What may hold the CPUs: placement groups not removed, and live actors, one line each."""
    lines = [
        f"placement group {handle(g).id.hex()}: "
        f"state {Table.PlacementGroupState.Name(g.state)}, job {g.creator_job_id.hex()} "
        f"(dead: {g.creator_job_dead}), creator actor {g.creator_actor_id.hex()} "
        f"(dead: {g.creator_actor_dead}), bundles {[dict(b.unit_resources) for b in g.bundles]}"
        for g in placement_groups()
        if g.state in HELD
    ]
    lines += [
        f"actor {a['ActorClassName']} {a['ActorID']}: {a['State']}, job {a['JobID']}, "
        f"pid {a.get('Pid')}, detached {a['IsDetached']}"
        for a in ray._private.state.actors().values()
        if a["State"] in LIVE
    ]
    return lines


def free_held_groups() -> int:
    """Remove every held placement group that is not detached (their actors end with them)."""
    from ray.util.placement_group import remove_placement_group

    groups = [g for g in placement_groups() if g.state in HELD and not g.is_detached]
    for group in groups:
        remove_placement_group(handle(group))
    return len(groups)


def leak_report(wait_s: float = IDLE_WAIT_S) -> str | None:
    """None when the instance's CPUs are all free (after waiting); else what held them, after
    freeing what can be freed."""
    held = wait_until_idle(wait_s)
    if not held:
        return None
    try:
        found = holders()
    except Exception as error:  # noqa: BLE001 (Ray's private tables: free the CPUs regardless)
        found = [f"(Ray's tables could not be read: {error!r})"]
    removed = free_held_groups()
    still = wait_until_idle(wait_s / 2)
    return (
        f"the shared Ray instance still had {held:g} CPUs held {wait_s:.0f} s after the "
        f"test; removed {removed} placement groups, {still:g} CPUs still held. Held by:\n"
        + "\n".join(found)
    )
