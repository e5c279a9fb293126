"""The watchdog's decisions, on actor tables shaped as Ray's GCS returns them. No Ray: the
cluster test (`make test-cluster`) loses a real node under running trials."""

import pytest

from sweeps.run.watchdog import FACTOR, Heard, fits, verdict, workers_of


def actor(class_name: str, port: int, owner_port: int, state: str = "ALIVE", node: str = "n1"):
    return {
        "ActorClassName": class_name,
        "State": state,
        "Address": {"NodeID": node, "Port": port},
        "OwnerAddress": {"NodeID": node, "Port": owner_port},
    }


def table(*actors: dict) -> dict:
    return {f"a{i}": a for i, a in enumerate(actors)}


def test_the_bound_is_a_multiple_of_the_longest_epoch_with_a_floor():
    heard = Heard(at=0.0)
    assert heard.bound(floor=600) == 600  # nothing reported yet: the floor
    heard.result(now=1000.0)  # start-up is not an epoch
    assert heard.longest_gap == 0
    heard.result(now=1100.0)
    heard.result(now=1400.0)  # epochs of 100 s and 300 s
    assert heard.longest_gap == 300 and heard.bound(floor=600) == FACTOR * 300
    assert heard.bound(floor=2000) == 2000
    rerun = heard.restart(now=5000.0)  # a retry: its own clock, the epochs seen so far
    assert (rerun.at, rerun.bound(floor=600)) == (5000.0, FACTOR * 300)


def test_a_trials_workers_are_found_through_ownership():
    actors = table(
        actor("ImplicitFunc", 10, 1),  # trial A's Tune actor
        actor("TrainController", 11, 10),
        actor("RayTrainWorker", 12, 11),
        actor("RayTrainWorker", 13, 11, state="PENDING_CREATION"),
        actor("ImplicitFunc", 20, 1),  # trial B: its controller and workers are gone
        actor("TrainController", 21, 20, state="DEAD"),
        actor("RayTrainWorker", 22, 21, state="DEAD"),
        actor("RayTrainWorker", 12, 11, node="n2"),  # same port on another node: not A's
    )
    assert workers_of(actors, "a0") == (1, 2)
    assert workers_of(actors, "a4") == (0, 0)
    assert workers_of(actors, "no-such-actor") == (0, 0)


@pytest.mark.parametrize(
    ("need", "workers", "nodes", "expected"),
    [
        ({"CPU": 1.0, "fake_gpu": 1.0}, 2, [{"CPU": 2.0, "fake_gpu": 2.0}], True),
        ({"CPU": 1.0, "fake_gpu": 1.0}, 2, [{"CPU": 2.0, "fake_gpu": 1.0}], False),
        ({"CPU": 1.0, "fake_gpu": 1.0}, 2, [{"CPU": 1, "fake_gpu": 1}] * 2, True),
        ({"CPU": 1.0, "GPU": 1.0}, 1, [{"CPU": 8.0}], False),  # no node has the resource
        ({"CPU": 1.0}, 1, [], False),
    ],
)
def test_fits_places_every_worker_bundle_on_some_node(need, workers, nodes, expected):
    assert fits(need, workers, nodes) is expected


def test_only_a_trial_without_workers_that_nothing_else_holds_up_is_a_hang():
    need = {"CPU": 1.0, "fake_gpu": 1.0}
    assert not verdict(2, fits_now=True, fits_ever=True, need=need).hung  # a long epoch
    idle = verdict(0, fits_now=True, fits_ever=True, need=need)
    assert idle.hung and "free resources could hold" in idle.why
    lost = verdict(0, fits_now=False, fits_ever=False, need=need)
    assert lost.hung and "no live node can hold" in lost.why
    queued = verdict(0, fits_now=False, fits_ever=True, need=need)
    assert not queued.hung and "running trials hold" in queued.why


def group(**fields):
    from ray.core.generated import gcs_pb2

    Table = gcs_pb2.PlacementGroupTableData
    defaults = {
        "creator_job_id": b"\x01\x00\x00\x00",
        "creator_actor_id": b"\x0a" * 16,
        "creator_actor_dead": True,
        "is_detached": False,
        "state": Table.CREATED,
    }
    return Table(**{**defaults, **fields})


def test_an_orphan_is_a_held_group_whose_creating_actor_or_job_is_gone():
    from ray.core.generated import gcs_pb2

    from sweeps.run.orphans import is_orphan

    Table = gcs_pb2.PlacementGroupTableData
    job = b"\x01\x00\x00\x00"
    assert is_orphan(group(), job)  # a dead controller's group, placed
    assert is_orphan(group(state=Table.PENDING), job)  # or still waiting for a node
    assert not is_orphan(group(creator_actor_dead=False), job)  # its controller lives
    assert not is_orphan(group(creator_actor_id=b"\xff" * 16), job)  # the driver's (Tune's)
    assert not is_orphan(group(creator_job_id=b"\x02\x00\x00\x00"), job)  # another job's
    ended = {"creator_job_id": b"\x02\x00\x00\x00", "creator_job_dead": True}
    assert is_orphan(group(**ended), job)  # unless that job ended (a killed driver's)
    assert is_orphan(group(**ended, creator_actor_id=b"\xff" * 16), job)  # its Tune groups too
    assert not is_orphan(group(**ended, creator_actor_dead=False), job)  # a detached actor's
    assert not is_orphan(group(is_detached=True), job)
    assert not is_orphan(group(state=Table.REMOVED), job)
