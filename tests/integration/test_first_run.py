"""A newcomer's first sweep, as the real entry point in a fresh folder with a Ray and an MLflow
store of its own: every line on the screen is ovat's (its progress, the plan, the ranking), and
what Ray, Tune and MLflow say is in the log file the command names."""

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

OVATS = re.compile(r"^(ovat: .*|### .*|\|.*\||Δ: .*|  \S+\s+\S+=\S+\s+seeds \S+|)$")


def test_the_default_verbosity_shows_ovat_lines_only(ray_session, workspace, data_dir):
    ablation = workspace / "first.yaml"
    ablation.write_text("preset: tiny\nvary: {model.bottleneck: [vq]}\nbaseline: vq\n")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # a Ray of its own
    done = subprocess.run(
        [sys.executable, "-m", "sweeps.cli", "sweep", str(ablation)],
        cwd=workspace,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    screen = done.stdout.splitlines() + done.stderr.splitlines()
    assert done.returncode == 0, "\n".join(screen[-40:])
    strangers = [line for line in screen if not OVATS.match(line)]
    assert not strangers, "lines that are not ovat's:\n" + "\n".join(strangers[:20])
    assert "ovat: vq/s0" in done.stdout and "ovat: 1/1 trials done" in done.stdout
    [named] = re.findall(r"ovat: Ray, Tune and MLflow log to (\S+)", done.stdout)
    log = (workspace / named).read_text()
    assert "Creating initial MLflow database tables" in log  # routed there, not lost
    assert not list((workspace / "results" / "ray").rglob("progress.csv"))  # no unread files
