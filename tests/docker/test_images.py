"""docker/images.py without a docker engine: which Debian mirror a base image is made from, the
PostgreSQL version, and the root filesystem's archive."""

import importlib.util
import re
import tarfile

import pytest

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("images", ROOT / "docker" / "images.py")
images = importlib.util.module_from_spec(spec)
spec.loader.exec_module(images)


def test_the_debian_mirror_is_the_hosts_bookworm_source_not_another_vendors(tmp_path, monkeypatch):
    monkeypatch.delenv("DEBIAN_MIRROR", raising=False)
    listed = tmp_path / "sources.list.d"
    listed.mkdir(parents=True)
    # found first in name order, and not Debian: CI's first run picked this one and failed
    (listed / "a-nodesource.sources").write_text(
        "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\n"
        "Components: main\n"
    )
    (listed / "b-mirror.sources.disabled").write_text(
        "Types: deb\nURIs: http://disabled.example/debian\nSuites: bookworm\n"
    )
    (listed / "debian.sources").write_text(
        "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n"
    )
    assert images.debian_mirror(tmp_path) == "http://mirror.example/debian"
    (tmp_path / "sources.list").write_text(
        "deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n"
        "deb [arch=amd64] http://proxy.example/debian bookworm main\n"
    )
    assert images.debian_mirror(tmp_path) == "http://proxy.example/debian"
    assert images.debian_mirror(tmp_path / "none") == "http://deb.debian.org/debian"
    monkeypatch.setenv("DEBIAN_MIRROR", "http://chosen.example/debian")
    assert images.debian_mirror(tmp_path) == "http://chosen.example/debian"


def test_both_postgresql_images_are_one_major_version():
    # a volume written by the official 17 could not be read by Debian's 15 on the same volume
    default = re.search(
        r"\$\{POSTGRES_IMAGE:-postgres:(\d+)", (ROOT / "docker/compose.yaml").read_text()
    )
    packaged = re.search(r"postgresql-(\d+)", (ROOT / "docker/postgres/Dockerfile").read_text())
    assert default[1] == packaged[1] == images.POSTGRES_MAJOR
    assert images.OFFICIAL_POSTGRES.startswith(f"postgres:{images.POSTGRES_MAJOR}")
    assert images.DEBIAN_POSTGRES.endswith(f":{images.POSTGRES_MAJOR}")


def test_a_tar_that_fails_is_an_error_even_when_its_reader_succeeds(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "file").write_text("kept")
    images.tar_into(str(tmp_path / "root"), ["sh", "-c", f"cat > {tmp_path / 'whole.tar'}"])
    with tarfile.open(tmp_path / "whole.tar") as archive:
        assert archive.getnames() == [".", "./file"]
    # the reader ends happily on the stream a failing tar leaves; the image is not kept
    with pytest.raises(images.ImageError, match="tar of .*missing failed"):
        images.tar_into(str(tmp_path / "missing"), ["sh", "-c", "cat > /dev/null"])
