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
