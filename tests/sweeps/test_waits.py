"""The sweep's waits from the environment: defaults, numbers, and one line for a bad value."""

import pytest

from sweeps.cli import main
from sweeps.run.waits import VARIABLES, waits
from trainers.config import ConfigError


def test_unset_or_empty_variables_are_the_defaults_and_numbers_are_read(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OVAT_WATCHDOG_CHECK_S", " ")
    assert (waits().watchdog_floor_s, waits().watchdog_check_s) == (600.0, 15.0)
    monkeypatch.setenv("OVAT_WATCHDOG_FLOOR_S", "45")
    monkeypatch.setenv("OVAT_TRACKING_WAIT_S", "0.5")
    assert (waits().watchdog_floor_s, waits().tracking_wait_s) == (45.0, 0.5)


@pytest.mark.parametrize("raw", ["abc", "0", "-5", "inf", "nan", "10s"])
def test_a_bad_value_is_named_with_what_is_valid(raw, monkeypatch):
    monkeypatch.setenv("OVAT_WATCHDOG_FLOOR_S", raw)
    with pytest.raises(ConfigError) as raised:
        waits()
    assert str(raised.value) == (
        f"OVAT_WATCHDOG_FLOOR_S={raw!r} is not a number of seconds above 0 (unset: 600)"
    )


def test_a_sweep_with_a_bad_wait_stops_in_one_line_before_ray(
    workspace,
    monkeypatch,
    capsys,
    no_ray,
):
    monkeypatch.setenv("OVAT_TRACKING_WAIT_S", "ten")
    assert main(["sweep", "bottleneck"]) == 2
    stderr = capsys.readouterr().err
    assert stderr == (
        "ovat: error: OVAT_TRACKING_WAIT_S='ten' is not a number of seconds above 0 (unset: 600)\n"
    )
    assert no_ray == []


def test_the_outbox_writes_side_by_side_only_to_a_server_unless_told(monkeypatch):
    from sweeps.run.waits import tracking_writers

    monkeypatch.delenv("OVAT_TRACKING_WRITERS", raising=False)
    assert tracking_writers("http://127.0.0.1:5000") == tracking_writers("https://m.org") == 8
    assert tracking_writers("sqlite:///mlflow.db") == 1  # SQLite takes one writer at a time
    monkeypatch.setenv("OVAT_TRACKING_WRITERS", "3")
    assert tracking_writers("http://127.0.0.1:5000") == tracking_writers("sqlite:///x.db") == 3


@pytest.mark.parametrize("raw", ["0", "65", "two", "-1", "1.5"])
def test_a_bad_writer_count_stops_a_sweep_in_one_line_before_ray(
    raw, workspace, monkeypatch, capsys, no_ray
):
    monkeypatch.setenv("OVAT_TRACKING_WRITERS", raw)
    assert main(["sweep", "bottleneck"]) == 2
    assert capsys.readouterr().err == (
        f"ovat: error: OVAT_TRACKING_WRITERS={raw!r} is not a whole number from 1 to 64\n"
    )
    assert no_ray == []
