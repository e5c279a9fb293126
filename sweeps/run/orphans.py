"""Placement groups whose creating actor died are removed, so they never hold the cluster.

Ray ties a placement group's lifetime to its creator's job, not to the actor that created it
(ray-project/ray#58515). A trial's Train controller creates its worker group's placement group;
Ray Train's own `PlacementGroupCleaner` removes it when the controller dies, but it learns of a
group only once the group's workers have started, and it asks the State API (the dashboard)
whether the controller lives. A controller that dies while its group is still pending (a restart
waiting for a lost node's resources, ended by the watchdog) leaves the group behind. Seen in
`make test-cluster`: two such groups were placed on the replacement node when it joined and held
all its CPUs and fake GPUs, while the reruns' own groups waited for them forever.

The sweep's watchdog removes them: groups of this sweep's Ray job, created by an actor (not by
the driver, whose groups are Tune's), not detached, that actor dead, and not yet removed; and
any group whose job has ended (a killed driver's) that is still held.
"""

import ray
from ray.core.generated import gcs_pb2
from ray.util.placement_group import PlacementGroup, remove_placement_group

Table = gcs_pb2.PlacementGroupTableData
HELD = {Table.PENDING, Table.PREPARED, Table.CREATED, Table.RESCHEDULING}


def is_orphan(group: Table, job_id: bytes) -> bool:
    """Held, not detached, and its creator gone: a dead actor of this job (a Train controller;
    a nil actor id is the driver, whose groups are Tune's), or any creator of a job that ended
    (a killed driver's groups, which Ray removes with its job; one still held is removed here)."""
    if group.is_detached or group.state not in HELD or not group.creator_actor_dead:
        return False
    created_by_actor = any(b != 0xFF for b in group.creator_actor_id)
    return group.creator_job_dead or (group.creator_job_id == job_id and created_by_actor)


def placement_groups() -> list[Table]:
    """Ray's placement group table as the GCS stores it (its Python view drops the creator)."""
    accessor = ray._private.state.state._connect_and_get_accessor()
    return [Table.FromString(raw) for raw in accessor.get_placement_group_table()]


def handle(group: Table) -> PlacementGroup:
    """The Python handle of a table entry (to remove it, or to name it by `.id.hex()`)."""
    return PlacementGroup(ray.PlacementGroupID(group.placement_group_id))


def remove_orphans() -> list[str]:
    """Remove this job's orphaned placement groups; their ids, in hex."""
    job_id = bytes.fromhex(ray.get_runtime_context().get_job_id())
    removed = []
    for group in placement_groups():
        if is_orphan(group, job_id):
            orphan = handle(group)
            remove_placement_group(orphan)
            removed.append(orphan.id.hex())
    return removed
