"""`make bench-scale` at a small size: sweeps written straight into a real SQLite store, then
ranked, pooled and diffed by the real commands."""

from bench import scale
from trainers import keys, tracking


def test_the_scale_rows_rank_pool_and_diff_sweeps_written_into_the_store(workspace):
    rows = scale.scale_rows(100)
    starts = ("make rank, 100 trials", "make rank SWEEP=a,b, 2 x 100", "make diff, 2 x 100")
    assert [row.name.startswith(start) for row, start in zip(rows, starts, strict=True)] == [
        True
    ] * 3
    assert all(row.value > 0 and row.detail for row in rows)
    trials = tracking.sweep_runs("scale-100")
    assert len(trials) == 100 and {r.info.status for r in trials} == {"FINISHED"}
    values = tracking.sweep_runs("scale-100", keys.ROLE_VALUE)
    assert sorted(r.data.metrics["n"] for r in values) == [20] * scale.VALUES  # 10 + 10 pooled
    # the pooled ranking was the last to write them: its rows, not the large sweep's alone
    assert {r.data.tags[keys.RANKED_OVER] for r in values} == {"scale-100+scale-100-b"}


def test_too_few_trials_for_the_small_sweep_is_refused_with_the_least(capsys):
    import pytest

    from bench.__main__ import main

    with pytest.raises(SystemExit) as ended:
        main(["scale", "--trials", "50"])
    assert ended.value.code == 2
    assert "--trials must be >= 100, got 50" in capsys.readouterr().err
