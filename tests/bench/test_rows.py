import json

import pytest

from bench.rows import Row, markdown, write
from bench.scheduling import TrialTimes, fixed_cost_row, scheduling_rows


def test_a_row_meets_its_target_in_its_own_direction():
    assert Row("a", 0.96, 0.95, True, "x").meets
    assert not Row("a", 0.94, 0.95, True, "x").meets
    assert Row("b", 1.1, 1.2, False, "x").meets
    assert not Row("b", 1.3, 1.2, False, "x").meets


def test_rows_are_written_as_json_and_markdown(tmp_path, monkeypatch):
    monkeypatch.setenv("OVAT_RESULTS", str(tmp_path))
    rows = [Row("packing", 1.3, 1.2, False, "ideal", {"makespan_s": 12.5})]
    paths = write(rows, "load")
    records = json.loads(paths["json"].read_text())
    assert records == [
        {
            "name": "packing",
            "value": 1.3,
            "target": 1.2,
            "higher_is_better": False,
            "anchor": "ideal",
            "detail": {"makespan_s": 12.5},
            "meets": False,
        }
    ]
    assert "| packing | 1.300 | <= 1.2 | **no** | ideal | makespan_s 12.5 |" in markdown(rows)
    assert paths["markdown"].read_text() == markdown(rows)


def test_perfect_packing_is_one_and_idle_slots_show_as_gap():
    # two slots; four 10 s trials back to back, starting 2 s apart in the second slot
    times = [
        TrialTimes(0, 10, 4),
        TrialTimes(10, 20, 4),
        TrialTimes(2, 12, 4),
        TrialTimes(12, 22, 4),
    ]
    packing, gap = scheduling_rows(times, concurrency=2)
    assert packing.value == pytest.approx(22 / 20)
    assert gap.value == pytest.approx((22 * 2 - 40) / 4 / 10)  # 1 idle slot-second per trial
    assert packing.meets and not gap.meets


def test_fixed_cost_counts_from_tunes_start_and_names_its_parts():
    parts = {"startup.workers_s": 3.0, "startup.data_s": 1.0}
    times = [TrialTimes(100, 120, 4, parts, first_step_at=106), TrialTimes(0, 20, 4, parts)]
    row = fixed_cost_row(times, default_train_s=45)
    assert row.detail["fixed_s"] == pytest.approx(5)  # 6 s stamped, 4 s where not stamped
    assert row.detail["startup.launch_s"] == pytest.approx(1)
    assert row.detail["startup.workers_s"] == 3.0
    assert row.value == pytest.approx(5 / 50) and row.meets


def test_the_benchmarks_page_holds_the_run_its_machine_and_what_each_row_compares():
    from bench.page import render

    rows = [Row("packing: makespan / ideal", 1.07, 1.2, False, "ideal", {"trials": 8})]
    text = render(rows, seconds=540.0)
    assert "| packing: makespan / ideal | 1.070 | <= 1.2 | yes |" in text
    assert "9.0 minutes, on " in text and "cores" in text and "torch 2.14" in text
    assert "| fixed cost share of a default trial |" in text  # the row definitions
