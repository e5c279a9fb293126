"""docker/: the compose cluster's security defaults and wiring, read from the files themselves.

Nothing here starts a container (`make test-docker`, tests/docker/test_cluster.py, does); where a
compose client is installed, `docker compose config` also validates the file against the spec."""

import re
import subprocess

import pytest
import yaml

from tests.conftest import ROOT
from tests.docker.compose import compose_client

DOCKER = ROOT / "docker"
COMPOSE = yaml.safe_load((DOCKER / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
RAY = ("ray-head", "ray-worker", "ray-worker-cpu")


def test_only_the_mlflow_ui_is_published_and_only_on_loopback():
    published = {name: s["ports"] for name, s in SERVICES.items() if s.get("ports")}
    assert list(published) == ["mlflow"]
    assert all(port.startswith("127.0.0.1:") for port in published["mlflow"])


def test_ray_keeps_token_authentication_with_one_required_token():
    for name in RAY:
        env = SERVICES[name]["environment"]
        assert env["RAY_AUTH_MODE"] == "token"
        assert env["RAY_AUTH_TOKEN"].startswith("${RAY_AUTH_TOKEN:?")  # no default token


def test_only_the_head_holds_tracking_credentials_and_no_command_line_a_password():
    # Only the head's sweep driver writes to MLflow; workers (and every process on them) had
    # the admin password. The database's was in the server's command line (`ps`, `docker top`).
    for name in RAY:
        env = SERVICES[name]["environment"]
        credentials = {"MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_USERNAME"}
        assert credentials & set(env) == (credentials if name == "ray-head" else set()), name
        assert env["RAY_AUTH_TOKEN"].startswith("${RAY_AUTH_TOKEN:?")  # the head kept the rest
    uri = re.search(
        r'MLFLOW_BACKEND_STORE_URI="([^"]+)"', (DOCKER / "mlflow-server.sh").read_text()
    )
    assert "PASSWORD" not in uri[1] and "PGPASSWORD" in (DOCKER / "mlflow-server.sh").read_text()


def test_mlflow_runs_basic_auth_on_postgres_and_serves_artifacts_from_a_volume():
    script = (DOCKER / "mlflow-server.sh").read_text()
    assert "--app-name basic-auth" in script
    # psycopg2 named: SQLAlchemy 2.1's default driver for postgresql:// is psycopg 3
    assert 'MLFLOW_BACKEND_STORE_URI="postgresql+psycopg2://' in script
    assert "--serve-artifacts --artifacts-destination" in script
    mlflow = SERVICES["mlflow"]
    assert mlflow["command"] == ["/app/docker/mlflow-server.sh"]
    assert mlflow["environment"]["MLFLOW_ARTIFACTS_DESTINATION"].startswith(
        "${MLFLOW_ARTIFACTS_DESTINATION:-/artifacts}"
    )
    assert mlflow["volumes"] == ["artifacts:/artifacts"]
    for name in RAY:  # clients log through the server's artifact proxy: no storage secrets
        assert not {"AWS_SECRET_ACCESS_KEY", "POSTGRES_PASSWORD"} & set(
            SERVICES[name]["environment"]
        )


def test_every_image_can_be_replaced_by_a_variable_and_none_is_minio():
    for name, service in SERVICES.items():
        assert service["image"].startswith("${"), (
            name
        )  # e.g. ${POSTGRES_IMAGE:-postgres:15-bookworm}
        assert "minio" not in service["image"]
    assert SERVICES["mlflow"]["pull_policy"] == "never"  # ovat's image is built, never pulled


def test_the_server_script_is_valid_shell():
    subprocess.run(["sh", "-n", str(DOCKER / "mlflow-server.sh")], check=True)


def test_state_lives_in_named_volumes_and_services_have_health_checks():
    named = set(COMPOSE["volumes"])
    for name, mount in (("postgres", "postgres:"), ("mlflow", "artifacts:")):
        assert any(v.startswith(mount) for v in SERVICES[name]["volumes"]), name
    for name in RAY:
        sources = {v.split(":")[0] for v in SERVICES[name]["volumes"]}
        assert {"results", "data"} <= sources <= named | {"${DATA_ROOT"}
    for name in ("postgres", "mlflow", *RAY):
        assert SERVICES[name]["healthcheck"]["test"], name


def test_gpu_workers_reserve_gpus_and_cpu_workers_offer_the_stand_in():
    [device] = SERVICES["ray-worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert SERVICES["ray-worker"]["profiles"] == ["gpu"]
    cpu = SERVICES["ray-worker-cpu"]
    assert cpu["profiles"] == ["cpu"]
    assert "resources" not in cpu["deploy"]  # no GPU reservation
    assert "--num-gpus=0" in cpu["command"] and '"fake_gpu"' in cpu["command"]


def test_every_required_variable_is_in_the_env_example_and_the_env_file_is_ignored():
    text = (DOCKER / "compose.yaml").read_text()
    required = set(re.findall(r"\$\{(\w+):\?", text))
    example = (DOCKER / ".env.example").read_text()
    defined = set(re.findall(r"^(\w+)=", example, flags=re.MULTILINE))
    assert required and required <= defined, required - defined
    ignored = subprocess.run(["git", "check-ignore", "-q", "docker/.env"], cwd=ROOT, check=False)
    assert ignored.returncode == 0


@pytest.mark.skipif(compose_client() is None, reason="no docker compose client on this machine")
def test_docker_compose_config_accepts_the_file(tmp_path):
    env = tmp_path / ".env"
    env.write_text((DOCKER / ".env.example").read_text())
    result = subprocess.run(
        [*compose_client(), "-f", str(DOCKER / "compose.yaml"), "--env-file", str(env), "config"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_rayjob_keeps_token_auth_and_shares_one_volume_across_pods():
    job = yaml.safe_load((DOCKER / "kuberay-rayjob.yaml").read_text())
    spec = job["spec"]["rayClusterSpec"]
    pods = [spec["headGroupSpec"]["template"]["spec"]] + [
        group["template"]["spec"] for group in spec["workerGroupSpecs"]
    ]
    for pod in pods:
        [container] = pod["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert env["RAY_AUTH_MODE"]["value"] == "token"
        assert "secretKeyRef" in env["RAY_AUTH_TOKEN"]["valueFrom"]  # never inline
        assert env["OVAT_RESULTS"]["value"].startswith("/shared/")
        claims = [
            v["persistentVolumeClaim"]["claimName"]
            for v in pod["volumes"]
            if "persistentVolumeClaim" in v
        ]
        assert claims == ["ovat-shared"]
    [worker] = pods[1]["containers"]
    assert "nvidia.com/gpu" in worker["resources"]["limits"]
    assert job["spec"]["entrypoint"].startswith("make sweep ABLATION=")


def test_cluster_up_refuses_the_example_secrets_before_building_anything(tmp_path):
    env = tmp_path / ".env"
    env.write_text((DOCKER / ".env.example").read_text())
    result = subprocess.run(
        ["make", "cluster-up", f"CLUSTER_ENV={env}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "RAY_AUTH_TOKEN=change-me" in result.stdout  # each line left to set is named
    assert "still has the example's change-me values" in result.stdout
    assert "building" not in result.stdout  # refused before docker/images.py ran
