"""The guard every integration test passes through (`tests.shared_ray`): a placement group left
holding a CPU of the shared instance is named, removed, and reported."""

import pytest

from tests import shared_ray

pytestmark = pytest.mark.integration


def test_a_held_placement_group_is_named_removed_and_reported(ray_session):
    from ray.util.placement_group import placement_group

    assert shared_ray.leak_report(wait_s=5) is None  # nothing held before
    group = placement_group([{"CPU": 1}])
    ray_session.get(group.ready(), timeout=60)
    assert shared_ray.held_cpus() == 1
    report = shared_ray.leak_report(wait_s=2)
    assert report is not None
    assert "still had 1 CPUs held 2 s after the test" in report
    assert f"placement group {group.id.hex()}: state CREATED" in report
    assert "removed 1 placement groups, 0 CPUs still held" in report
    assert shared_ray.held_cpus() == 0
