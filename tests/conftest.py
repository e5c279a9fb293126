"""Shared fixtures: a tiny config, an isolated MLflow store and results folder, one Ray instance.

Unit tests never start Ray; integration tests (marked) share one session-scoped instance,
because starting Ray costs ~10 s here and each TorchTrainer worker group another ~20-30 s.
"""

import contextlib
import faulthandler
import os
import signal
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Per test, its fixtures' setup and teardown included. The longest today (a module's sweep plus
# its first test) takes ~4 min here; `pytest.mark.time_limit(s)` raises it for one module.
TIME_LIMIT_S = 900
# A test stuck where Python never runs its signal handler (a C call that does not return) is
# ended this much later, with every thread's stack on stderr.
HARD_LIMIT_GRACE_S = 120


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """A test that hangs fails after its time limit, with every thread's stack, instead of
    holding the whole run until CI's own deadline ends it with no word of where it hung (a
    driver that outlived its test once kept the shared Ray's CPUs, and the next sweep waited)."""
    marker = item.get_closest_marker("time_limit")
    limit = int(marker.args[0]) if marker else TIME_LIMIT_S

    def expire(signum, frame):
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        raise TimeoutError(f"{item.nodeid} ran past its time limit of {limit} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(limit)
    faulthandler.dump_traceback_later(limit + HARD_LIMIT_GRACE_S, exit=True)
    try:
        yield
    finally:
        signal.alarm(0)
        faulthandler.cancel_dump_traceback_later()
        signal.signal(signal.SIGALRM, previous)


WATCHED = ("OVAT_DATA_DIR", "OVAT_RESULTS", "MLFLOW_TRACKING_URI", "RAY_ADDRESS")


@pytest.fixture(autouse=True)
def leaves_the_environment_as_it_found_it(request):
    """Every test ends with the variables ovat reads and the working folder as they were: a
    test that leaks them would point later tests (or the user's shell) at its store."""
    if "data_dir" in request.fixturenames:  # the session's data folder, set once for all
        request.getfixturevalue("data_dir")
    before = ({name: os.environ.get(name) for name in WATCHED}, os.getcwd())
    yield
    after = ({name: os.environ.get(name) for name in WATCHED}, os.getcwd())
    assert after == before, f"the test changed the environment: {before} -> {after}"


@pytest.fixture(autouse=True)
def leaves_the_shared_ray_free(request):
    """A test that used the shared Ray instance ends with its CPUs free, or fails naming what
    holds them (`tests.shared_ray`): a leak would otherwise hang every later sweep."""
    yield
    if "ray_session" in request.fixturenames:
        from tests.shared_ray import leak_report

        report = leak_report()
        if report:
            pytest.fail(report)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """Prepared data shared by all tests: the sample set is built once per session, in a folder
    set for the session and unset after it."""
    folder = tmp_path_factory.mktemp("data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OVAT_DATA_DIR", str(folder))
        yield folder


@pytest.fixture
def workspace(tmp_path, monkeypatch, data_dir) -> Path:
    """A fresh MLflow store and results folder per test, as a clean clone would have."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setenv("OVAT_RESULTS", str(tmp_path / "results"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def no_ray(monkeypatch):
    """Fails the test if the command tries to start or join Ray (whether or not the session's
    integration tests already have a Ray instance up in this process)."""
    import sweeps.run.cluster
    import sweeps.run.tuner

    calls = []
    monkeypatch.setattr(sweeps.run.cluster, "ensure_ray", lambda: calls.append("ensure_ray"))
    monkeypatch.setattr(sweeps.run.tuner, "run_plan", lambda *a, **k: calls.append("run_plan"))
    return calls


@pytest.fixture(scope="session")
def ray_session(data_dir):
    import ray

    # "local": a Ray of its own even where another is running on this machine (a CI host may
    # have one); address=None would attach to that one instead.
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        configure_logging=False,
        log_to_driver=False,
    )
    yield ray
    ray.shutdown()


SWEEP_EPOCHS = 2
# The shared pair sweep's settings on the tiny preset: half a CPU a trial runs all four at once.
SWEEP_OVERRIDES = {
    "train.epochs": SWEEP_EPOCHS,
    "data.limit": 96,
    "train.log_every": 1,
    "resources.cpus_per_worker": 0.5,
}


def tiny_plan(name: str, raw: dict, overrides: dict | None = None, **plan_options):
    """The plan of an ablation built in code, on the `tiny` preset (the debug model)."""
    from sweeps.define import ablation as ablations

    ablation = ablations.Ablation.from_dict(name, {"preset": "tiny", **raw})
    return ablations.plan(ablation, overrides, **plan_options)


@contextlib.contextmanager
def trials_sweep(folder: Path, name: str, trials: tuple, vary: str, baseline: str):
    """Run hand-built trials as one sweep into a store of its own under `folder`, and keep that
    store the current one while the caller's tests read it: (published, client, trial runs by
    value)."""
    import mlflow

    from sweeps.define.plan import SweepPlan
    from sweeps.run.tuner import run_plan

    plan = SweepPlan(
        name=name,
        trials=trials,
        base=trials[0].config,
        vary=vary,
        baseline=baseline,
        experiment=f"ovat-{name}",
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder}/mlflow.db")
        patch.setenv("OVAT_RESULTS", str(folder / "results"))
        patch.chdir(folder)
        published = run_plan(plan)
        client = mlflow.tracking.MlflowClient(f"sqlite:///{folder}/mlflow.db")
        runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
        yield (
            published,
            client,
            {r.data.tags["ovat.value"]: r for r in runs if r.data.tags.get("ovat.role") == "trial"},
        )


@pytest.fixture(scope="session")
def pair_sweep(ray_session, tmp_path_factory):
    """One real 2-value x 2-seed sweep (vq, ffn) that several integration tests read: half a CPU
    per trial runs all four at once on 2 CPUs, each logging its loss at every step to SQLite."""
    import mlflow

    from sweeps.run.tuner import run_plan

    folder = tmp_path_factory.mktemp("sweep")
    overrides = SWEEP_OVERRIDES
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder}/mlflow.db")
        patch.setenv("OVAT_RESULTS", str(folder / "results"))
        patch.chdir(folder)
        raw = {"vary": {"model.bottleneck": ["vq", "ffn"]}, "baseline": "vq", "seeds": 2}
        report = run_plan(tiny_plan("pair", raw, overrides))
        client = mlflow.tracking.MlflowClient(f"sqlite:///{folder}/mlflow.db")
        runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
        yield report, client, runs, folder


@pytest.fixture
def in_sweep_store(pair_sweep, monkeypatch):
    """Point MLflow and results at the shared sweep's store for one test."""
    folder = pair_sweep[3]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder}/mlflow.db")
    monkeypatch.setenv("OVAT_RESULTS", str(folder / "results"))
    monkeypatch.chdir(folder)
    return pair_sweep


@pytest.fixture(scope="session")
def prepared_tree(ray_session, data_dir, tmp_path_factory):
    """An `imagefolder` tree of real JPEGs (with the quirky files), prepared by `ovat prepare`
    in this process, where the shared Ray instance is up: its decode runs as Ray tasks."""
    import contextlib
    import io

    from sweeps.cli import main
    from tests.data import trees

    root = tmp_path_factory.mktemp("imagefolder")
    trees.imagefolder_tree(root, per_class=30)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["prepare", "imagefolder", "--root", str(root)])
    assert code == 0, out.getvalue() + err.getvalue()
    return root, out.getvalue(), err.getvalue()


def tiny_model(**changes):
    """The `tiny` preset's model config (the debug model), with `changes` (bottleneck=...)."""
    from trainers.presets import preset

    return preset("tiny", {f"model.{key}": value for key, value in changes.items()}).model


def tiny_config(**overrides):
    """The `tiny` preset's experiment config with dotted `overrides`."""
    from trainers.presets import preset

    return preset("tiny", overrides)


ADMIN, PASSWORD = "admin", "a-long-admin-password-1"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def auth_server(tmp_path):
    """docker/mlflow-server.sh itself, as compose runs it, on a free loopback port with SQLite
    stores in place of PostgreSQL; killed afterwards. Yields its URL."""
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "MLFLOW_BACKEND_STORE_URI": f"sqlite:///{tmp_path}/runs.db",
        "MLFLOW_AUTH_DATABASE_URI": f"sqlite:///{tmp_path}/users.db",
        "MLFLOW_ARTIFACTS_DESTINATION": str(tmp_path / "artifacts"),
        "MLFLOW_HOST": "127.0.0.1",
        "MLFLOW_PORT": str(port),
        "MLFLOW_WORKERS": "1",
        "MLFLOW_TRACKING_USERNAME": ADMIN,
        "MLFLOW_AUTH_ADMIN_PASSWORD": PASSWORD,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-secret",
    }
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 (the child owns it)
    server = subprocess.Popen(
        ["sh", str(ROOT / "docker" / "mlflow-server.sh")],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if server.poll() is not None:
                pytest.fail(f"the server exited: {(tmp_path / 'server.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the basic-auth server did not answer /health in 120 s")
        yield url
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        log.close()
