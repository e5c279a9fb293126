"""The basic-auth tracking server of docker/ for real: `docker/mlflow-server.sh` started on
loopback (SQLite stores instead of PostgreSQL), asked with no, wrong and right credentials."""

import base64
import urllib.error
import urllib.request

import pytest

from tests.conftest import ADMIN, PASSWORD

pytestmark = pytest.mark.integration


def status(url: str, user: str = "", password: str = "") -> int:
    request = urllib.request.Request(url)
    if user:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_auth_server_refuses_without_credentials_and_lets_the_admin_in(auth_server):
    api = f"{auth_server}/api/2.0/mlflow/experiments/search?max_results=1"
    assert status(api) == 401
    assert status(api, ADMIN, "wrong") == 401
    assert status(api, ADMIN, PASSWORD) == 200
    assert status(f"{auth_server}/", ADMIN, PASSWORD) == 200  # the UI itself
