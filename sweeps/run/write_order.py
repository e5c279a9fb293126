"""Which of an outbox's queued writes may be delivered at the same time, and which must wait:
a tracking server answers each request in tens of milliseconds, so writes go side by side, but
never two to one run (its writes keep their order) and never a run before the run it nests
under exists."""

import json

LOOK_AHEAD = 8  # writes read per writer to fill a window (a trial's open, params, dataset...)


def run_key(key_tags: dict) -> str:
    """A run's key in the queue: its key tags (a trial's sweep and trial key, a value run's
    sweep and value), in one order."""
    return json.dumps(sorted(key_tags.items()))


def touches(entry: dict) -> set[str]:
    """What a write changes that another write may change at the same time: its run, and the
    dataset it logs (MLflow inserts a dataset once per experiment: two trials' first inputs of
    one dataset sent at once collided on PostgreSQL's unique key and one was refused)."""
    held = {run_key(entry["key_tags"])}
    if entry["op"] == "dataset":
        held.add(json.dumps(["dataset", entry.get("name"), entry.get("digest")]))
    return held


def next_window(head: list[dict], writers: int) -> list[dict]:
    """Up to `writers` writes of the queue's `head` that may go at once, in queue order: each
    run's first waiting write (its later ones wait for it), except an "open" whose parent run
    is itself still waiting to be opened, and one write per dataset (see `touches`)."""
    window, waiting, opening = [], set(), set()
    for entry in head:
        held = touches(entry)
        parent = entry.get("parent_key")
        if not held & waiting and not (parent and run_key(parent) in opening):
            window.append(entry)
        waiting |= held
        if entry["op"] == "open":
            opening.add(run_key(entry["key_tags"]))
        if len(window) == writers:
            break
    return window
