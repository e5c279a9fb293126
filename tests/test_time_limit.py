"""A hung test fails at its time limit with every thread's stack, instead of holding the run."""

import subprocess
import sys

from tests.conftest import ROOT

HUNG = """
import time

import pytest


@pytest.mark.time_limit(2)
def test_hangs():
    time.sleep(600)


def test_after_it_runs():
    pass
"""


def test_a_hung_test_fails_at_its_limit_and_the_run_goes_on(tmp_path):
    (tmp_path / "test_hung.py").write_text(HUNG)
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider"]
        + ["--rootdir", str(tmp_path), str(tmp_path / "test_hung.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    said = ran.stdout + ran.stderr
    assert ran.returncode == 1, said
    assert "ran past its time limit of 2 s" in said
    assert "1 failed, 1 passed" in said
    assert "in test_hangs" in said  # the stack dump names where it hung
