"""sweeps/run/console.py: libraries' output goes to the sweep's log, and everything is put back."""

import logging
import os

from sweeps.run.console import QUIET_ENV, quiet


def test_library_logs_go_to_the_file_and_the_environment_is_restored(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "false")
    monkeypatch.delenv("RAY_AIR_NEW_OUTPUT", raising=False)
    log = tmp_path / "ovat.log"
    with quiet(log):
        # MLflow reads this at each run's end: no "View run ... at <url>" lines on the terminal
        assert os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] == "true"
        assert os.environ["RAY_AIR_NEW_OUTPUT"] == "0"
        logging.getLogger("mlflow.store").warning("a library's chatter")
    assert "a library's chatter" in log.read_text()
    assert "a library's chatter" not in capfd.readouterr().err
    assert os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] == "false"
    assert "RAY_AIR_NEW_OUTPUT" not in os.environ
    assert set(QUIET_ENV) == {"RAY_AIR_NEW_OUTPUT", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"}


def test_a_library_imported_inside_the_block_stays_quiet(tmp_path):
    """Ray Data adds a terminal handler to its logger on import; a sweep imports it inside the
    block. A fresh interpreter, so that nothing imported it before."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = (
        "import logging, sys\n"
        "from pathlib import Path\n"
        "from sweeps.run.console import quiet\n"
        "with quiet(Path(sys.argv[1])):\n"
        "    import ray.data\n"
        "    logging.getLogger('ray.data').warning('chatter from inside the block')\n"
    )
    log = tmp_path / "ovat.log"
    done = subprocess.run(
        [sys.executable, "-c", code, str(log)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "chatter from inside the block" not in done.stderr + done.stdout
    assert "ray.data: chatter from inside the block" in log.read_text()
