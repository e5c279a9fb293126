"""SEEDS=auto for real: a race on the tiny preset where one value cannot train (lr 1e-9) and
one differs from the base only in logging (identical losses seed by seed).

Two uninterrupted sweeps and one whose driver is killed mid-race and resumed with RESUME=1
reach the same decisions at the same seed counts, within the budget; `make rank` rebuilds
the same table from MLflow alone. All three run in `make test-race` (CI runs it after `make test`):
the first race alone took 526 s of `make test` here, and `make test-race` ran it again.
"""

import os
import signal
import subprocess
import sys

import mlflow
import pytest
import yaml

from sweeps.cli import main
from sweeps.judge.racing import SEPARATED, TIED
from sweeps.publish.summary import rebuild
from tests.conftest import ROOT
from tests.integration.test_resume import stop_driver, trial_runs, wait_for

pytestmark = pytest.mark.integration

UNTRAINABLE, TWIN = "train.lr=1e-09", "train.log_every=5"
ABLATION = {
    "preset": "tiny",
    "base": {
        "train.lr": 1.0e-2,
        "train.epochs": 3,
        "data.limit": 96,
        "resources.cpus_per_worker": 0.5,
    },
    "vary": {"train.lr": [1.0e-9], "train.log_every": [5]},
}
# Round 4 is 12 trials; it may start each racing value's fifth seed while it waits (12 + 3 fit
# in 15); round 5 is MAX_SEEDS.
RACE = ["--seeds", "auto", "--min-seeds", "4", "--max-seeds", "5", "--budget", "15"]


def decisions(table) -> dict:
    return {r.value: (r.decision, r.decided_at, r.n) for r in table}


def race(folder) -> tuple[list, list]:
    """One uninterrupted SEEDS=auto sweep in a store of its own under `folder`."""
    path = folder / "race.yaml"
    path.write_text(yaml.safe_dump(ABLATION))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder}/mlflow.db")
        patch.setenv("OVAT_RESULTS", str(folder / "results"))
        patch.chdir(folder)
        assert main(["sweep", str(path), *RACE]) == 0
        client = mlflow.tracking.MlflowClient(f"sqlite:///{folder}/mlflow.db")
        return rebuild("latest").ranking, trial_runs(client)


@pytest.fixture(scope="module")
def first_race(ray_session, data_dir, tmp_path_factory):
    return race(tmp_path_factory.mktemp("race-a"))


@pytest.mark.race
def test_the_untrainable_value_is_separated_at_the_first_look_and_the_twins_never(first_race):
    table, runs = first_race
    assert decisions(table) == {
        UNTRAINABLE: (SEPARATED, 4, 4),
        "base": (TIED, 5, 5),
        TWIN: (TIED, 5, 5),
    }
    rows = {r.value: r for r in table}
    assert rows[UNTRAINABLE].verdict == "worse" and rows[TWIN].verdict == "within noise"
    assert len(runs) <= 15  # the budget counts speculative trials too
    seeds = [(r.data.tags["ovat.value"], r.data.tags["ovat.seed"]) for r in runs]
    assert len(seeds) == len(set(seeds))  # one run per (value, seed)


@pytest.mark.race
def test_a_second_run_reaches_the_same_decisions(first_race, ray_session, tmp_path):
    table, _ = race(tmp_path)
    assert decisions(table) == decisions(first_race[0])


@pytest.mark.race
def test_a_killed_driver_resumed_reaches_the_same_decisions(
    first_race, ray_session, workspace, capsys
):
    path = workspace / "race.yaml"
    path.write_text(yaml.safe_dump(ABLATION))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "RAY_ADDRESS": ray_session.get_runtime_context().gcs_address,
    }
    command = [sys.executable, "-m", "sweeps.cli", "sweep", str(path), *RACE]
    client = mlflow.tracking.MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    log = workspace / "first.log"
    with open(log, "w") as output:
        driver = subprocess.Popen(command, cwd=workspace, env=env, stdout=output, stderr=output)
        try:
            wait_for(
                lambda: len([r for r in trial_runs(client) if r.info.status == "FINISHED"]) >= 6,
                400,
                "six trials to finish",
                driver,
                log,
            )
        finally:
            stop_driver(driver, signal.SIGKILL, log)
    assert main(["sweep", str(path), *RACE, "--resume", "1"]) == 0, capsys.readouterr().err
    assert decisions(rebuild("latest").ranking) == decisions(first_race[0])
    runs = trial_runs(client)
    finished = [
        (r.data.tags["ovat.value"], r.data.tags["ovat.seed"])
        for r in runs
        if r.info.status == "FINISHED"
    ]
    assert len(finished) == len(set(finished)) and len(runs) <= 15
