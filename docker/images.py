"""The compose cluster's images: ovat's own, and the base and PostgreSQL images it needs.

Official images are used where they can be pulled (python:3.11-slim-bookworm, postgres:15-bookworm).
Where no registry is reachable, both are made from Debian's packages instead: a bookworm base
by `debootstrap` from the host's Debian mirror, and PostgreSQL 15 on it (docker/postgres/).
Every image is built once per machine and reused; ovat's own rebuild reuses its dependency
layer. The names chosen are written to docker/.images.env, which `make cluster-*` hands to
compose. Stdlib only: it runs before any virtual environment exists.

    python3 docker/images.py            # what `make cluster-images` runs
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IMAGES_ENV = REPO / "docker" / ".images.env"
OFFICIAL_BASE = "python:3.11-slim-bookworm"
DEBIAN_BASE = "ovat-debian:bookworm"
# One PostgreSQL major version for the official image and the one made from Debian bookworm's
# package (15): a data volume written by one major version cannot be read by another.
POSTGRES_MAJOR = "15"
OFFICIAL_POSTGRES = f"postgres:{POSTGRES_MAJOR}-bookworm"
DEBIAN_POSTGRES = f"ovat-postgres:{POSTGRES_MAJOR}"
PULL_TIMEOUT_S = 120


class ImageError(RuntimeError):
    """An image cannot be had; the message says what to install or set."""


def say(message: str) -> None:
    print(f"ovat: {message}", flush=True)


def build_client() -> str:
    """A docker client that builds with BuildKit (build secrets and cache mounts need it).

    Docker >= 23 builds through the buildx plugin; Debian's docker.io 20.10 has BuildKit built
    in. A machine may have a newer client without buildx earlier on PATH than Debian's."""
    if os.environ.get("DOCKER"):
        return os.environ["DOCKER"]
    for folder in os.get_exec_path():
        client = Path(folder) / "docker"
        if not client.is_file():
            continue
        if run([str(client), "buildx", "version"], check=False).returncode == 0:
            return str(client)
        version = run([str(client), "version", "-f", "{{.Client.Version}}"], check=False)
        major = re.match(r"(\d+)\.", version.stdout.strip())
        if major and int(major.group(1)) < 23:
            return str(client)
    raise ImageError(
        "no docker client here builds with BuildKit: install Docker's buildx plugin "
        "(docker-buildx-plugin) or set DOCKER= to a client that has it"
    )


def run(cmd: list[str], check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    if check and result.returncode != 0:
        raise ImageError(f"{' '.join(cmd[:3])} ... failed:\n{result.stderr.strip()[-2000:]}")
    return result


def exists(image: str) -> bool:
    return run(["docker", "image", "inspect", image], check=False).returncode == 0


def pulled(image: str) -> bool:
    """Whether the image is here, pulling it if a registry answers."""
    if exists(image):
        return True
    try:
        result = run(["docker", "pull", "--quiet", image], check=False, timeout=PULL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def debian_mirror(apt: Path = Path("/etc/apt")) -> str:
    """The mirror that serves Debian bookworm to the host's apt (a site's own mirror or proxy),
    else Debian's CDN. apt reads sources.list, sources.list.d/*.list (one line per source) and
    sources.list.d/*.sources (deb822 stanzas); only a source of the `bookworm` suite counts, not
    other vendors' repositories beside it."""
    if os.environ.get("DEBIAN_MIRROR"):
        return os.environ["DEBIAN_MIRROR"]
    one_line = [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list"))]
    for path in one_line:
        for line in path.read_text(errors="replace").splitlines() if path.is_file() else []:
            words = re.sub(r"\[[^]]*\]", "", line).split()
            if len(words) >= 3 and words[0] == "deb" and words[2] == "bookworm":
                return words[1]
    for path in sorted((apt / "sources.list.d").glob("*.sources")):
        for stanza in path.read_text(errors="replace").split("\n\n"):
            fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.MULTILINE))
            if (
                "deb" in fields.get("Types", "").split()
                and "bookworm" in fields.get("Suites", "").split()
            ):
                return fields["URIs"].split()[0]
    return "http://deb.debian.org/debian"


def debian_base() -> str:
    """A minimal Debian bookworm image made here by debootstrap (about a minute)."""
    if exists(DEBIAN_BASE):
        return DEBIAN_BASE
    if not shutil.which("debootstrap"):
        raise ImageError(
            f"{OFFICIAL_BASE} cannot be pulled and debootstrap is missing to make a Debian base: "
            "apt-get install -y debootstrap, or set OVAT_BASE_IMAGE= to an image you have"
        )
    mirror = debian_mirror()
    say(f"no registry reachable: making {DEBIAN_BASE} with debootstrap from {mirror}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ovat-rootfs-") as rootfs:
        run(["debootstrap", "--variant=minbase", "bookworm", rootfs, mirror])
        try:
            tar_into(rootfs, ["docker", "import", "-", DEBIAN_BASE])
        except ImageError:
            run(["docker", "image", "rm", "--force", DEBIAN_BASE], check=False)
            raise
    say(f"{DEBIAN_BASE} made in {time.monotonic() - started:.0f} s")
    return DEBIAN_BASE


def tar_into(folder: str, consumer: list[str]) -> None:
    """Pipe a tar of `folder` into `consumer`; both must succeed: a tar that fails midway hands
    the consumer a partial but well-formed stream, and `docker import` would make an image of
    it that every later build reuses."""
    tar = subprocess.Popen(
        ["tar", "-C", folder, "-c", "."], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        run(consumer, stdin=tar.stdout)
    finally:
        tar.stdout.close()
        said = tar.stderr.read().decode(errors="replace")
        tar.stderr.close()
        tar.wait()
    if tar.returncode != 0:
        raise ImageError(f"tar of {folder} failed ({tar.returncode}):\n{said.strip()[-2000:]}")


def base_image() -> str:
    chosen = os.environ.get("OVAT_BASE_IMAGE")
    if chosen:
        if not pulled(chosen):
            raise ImageError(f"OVAT_BASE_IMAGE={chosen} is neither here nor pullable")
        return chosen
    return OFFICIAL_BASE if pulled(OFFICIAL_BASE) else debian_base()


def build(client: str, image: str, dockerfile: str, args: dict[str, str], log: Path) -> None:
    """docker build with BuildKit, the host's CA bundle and pip settings as build secrets."""
    cmd = [client, "build", "--progress=plain", "-f", dockerfile, "-t", image]
    for key, value in args.items():
        cmd += ["--build-arg", f"{key}={value}"]
    for secret, path in pip_secrets().items():
        cmd += ["--secret", f"id={secret},src={path}"]
    started = time.monotonic()
    with log.open("a") as out:
        out.write(f"$ {' '.join(cmd)} .\n")
        out.flush()
        result = subprocess.run(
            [*cmd, "."],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "DOCKER_BUILDKIT": "1"},
            check=False,
        )
    if result.returncode != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-30:])
        raise ImageError(f"building {image} failed (whole log: {log}):\n{tail}")
    size = run(["docker", "image", "inspect", "-f", "{{.Size}}", image]).stdout.strip()
    say(f"{image} built in {time.monotonic() - started:.0f} s, {int(size) / 1e9:.1f} GB")


def pip_secrets() -> dict[str, str]:
    """Build secrets for pip: a CA bundle (PIP_CERT, as pip itself reads it) and a pip.conf
    naming the site's index (OVAT_PIP_CONF). The host's own pip.conf is not passed on its own
    account: it may name paths (local wheel folders, constraint files) that a build cannot see."""
    secrets = {}
    cert = os.environ.get("PIP_CERT") or os.environ.get("REQUESTS_CA_BUNDLE")
    if cert and Path(cert).is_file():
        secrets["pip_cert"] = cert
    conf = os.environ.get("OVAT_PIP_CONF")
    if conf:
        if not Path(conf).is_file():
            raise ImageError(f"OVAT_PIP_CONF={conf} is not a file")
        secrets["pip_conf"] = conf
    return secrets


def postgres_image(client: str, base: str, log: Path) -> str:
    chosen = os.environ.get("POSTGRES_IMAGE")
    if chosen:
        if not pulled(chosen):
            raise ImageError(f"POSTGRES_IMAGE={chosen} is neither here nor pullable")
        return chosen
    if pulled(OFFICIAL_POSTGRES):
        return OFFICIAL_POSTGRES
    if not exists(DEBIAN_POSTGRES):
        say(
            f"{OFFICIAL_POSTGRES} cannot be pulled: building {DEBIAN_POSTGRES} from Debian's package"
        )
        build(client, DEBIAN_POSTGRES, "docker/postgres/Dockerfile", {"BASE_IMAGE": base}, log)
    return DEBIAN_POSTGRES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tag", default=os.environ.get("OVAT_IMAGE", "ovat:latest"))
    parser.add_argument("--log", type=Path, default=REPO / "results" / "docker-build.log")
    args = parser.parse_args(argv)
    args.log.parent.mkdir(parents=True, exist_ok=True)
    args.log.write_text("")
    try:
        if run(["docker", "info"], check=False).returncode != 0:
            raise ImageError("no docker engine answers (docker info): start dockerd first")
        client = build_client()
        base = base_image()
        postgres = postgres_image(client, base, args.log)
        say(f"building {args.tag} on {base} (log: {args.log}; a first build downloads ~3 GB)")
        build(client, args.tag, "docker/Dockerfile", {"BASE_IMAGE": base}, args.log)
    except ImageError as error:
        print(f"ovat: error: {error}", file=sys.stderr)
        return 2
    IMAGES_ENV.write_text(
        "# written by docker/images.py: the images this machine runs\n"
        f"OVAT_IMAGE={args.tag}\nPOSTGRES_IMAGE={postgres}\n"
    )
    say(f"images: {args.tag}, {postgres} (docker/.images.env)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
