"""Real tracking services on loopback for the benchmarks: PostgreSQL from Debian's package
(a fresh cluster in a scratch folder, as the compose cluster's database runs it) and
`mlflow server` on any backend store; and the CPU time each process tree has used, to say
where the time goes."""

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

TICKS_PER_S = os.sysconf("SC_CLK_TCK")
PG_USER = "postgres"  # PostgreSQL refuses to run as root; Debian's package adds this user


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pg_bin(name: str) -> str:
    """A PostgreSQL program: on PATH, else from Debian's versioned folder."""
    debian = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    found = shutil.which(name) or (debian[-1] if debian else None)
    if not found:
        raise SystemExit(
            f"bench: PostgreSQL's {name} is not installed; on Debian: apt-get install postgresql"
        )
    return found


def as_pg_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", PG_USER, "--", *command] if os.geteuid() == 0 else command


@contextlib.contextmanager
def postgres(folder: Path) -> Iterator[str]:
    """A PostgreSQL cluster on 127.0.0.1 (trust auth: loopback only, a scratch database) with
    its default settings; yields its SQLAlchemy URI and stops it afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    data, port = folder / "pgdata", free_port()
    if os.geteuid() == 0:
        account = pwd.getpwnam(PG_USER)
        os.chown(folder, account.pw_uid, account.pw_gid)
    run = subprocess.run
    run(as_pg_user([pg_bin("initdb"), "-D", str(data), "-U", PG_USER, "--auth=trust"])
        + ["-E", "UTF8"], check=True, capture_output=True)  # fmt: skip
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
    ctl = [pg_bin("pg_ctl"), "-D", str(data), "-l", str(folder / "postgres.log")]
    run(as_pg_user([*ctl, "-o", options, "-w", "start"]), check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg2://{PG_USER}@127.0.0.1:{port}/postgres"
    finally:
        run(as_pg_user([*ctl, "-m", "fast", "-w", "stop"]), capture_output=True)


def postmaster_pid(folder: Path) -> int:
    return int((folder / "pgdata" / "postmaster.pid").read_text().split()[0])


class TrackingServer:
    """`mlflow server` on 127.0.0.1 in a process group of its own (its workers with it), so it
    can be paused (SIGSTOP), resumed and timed as a whole."""

    def __init__(self, folder: Path, backend_uri: str, workers: int = 4):
        self.folder, self.backend_uri, self.workers = folder, backend_uri, workers
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 300) -> None:
        mlflow_bin = Path(sys.executable).with_name("mlflow")
        command = [str(mlflow_bin), "server", "--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--workers", str(self.workers), "--backend-store-uri", self.backend_uri]
        command += ["--artifacts-destination", str(self.folder / "artifacts")]
        log = open(self.folder / "mlflow-server.log", "a")  # noqa: SIM115 (the child owns it)
        self.process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = (self.folder / "mlflow-server.log").read_text()[-2000:]
                raise SystemExit(f"bench: the mlflow server exited:\n{tail}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.uri}/health", timeout=2),
            ):
                return
            time.sleep(0.25)
        raise SystemExit(f"bench: mlflow server did not answer on {self.uri} in {timeout_s} s")

    def signal(self, number: int) -> None:
        os.killpg(self.process.pid, number)

    def pause(self) -> None:
        self.signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.resume()
            self.signal(signal.SIGKILL)
            self.process.wait()


def stat_fields(path: str) -> list[str]:
    """A /proc stat file from the state on (field 3): the name before it may hold spaces."""
    text = Path(path).read_text()
    return text[text.rindex(")") + 2 :].split()


def cpu_s(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S  # utime + stime


def processes() -> dict[int, tuple[int, float]]:
    """Every process: pid -> (parent pid, CPU seconds used)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat_fields(f"{entry}/stat")
                found[int(entry.name)] = (int(fields[1]), cpu_s(fields))
    return found


def tree(root: int, table: dict[int, tuple[int, float]]) -> list[int]:
    """A process and every live descendant in `table` (`processes()`), root first."""
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def tree_cpu_s(root: int, table: dict[int, tuple[int, float]] | None = None) -> float:
    """CPU seconds of a process and every live descendant (an exited child's are not counted,
    so sample trees whose workers live as long as the measurement)."""
    table = processes() if table is None else table
    return sum(table.get(pid, (0, 0.0))[1] for pid in tree(root, table))


def title(pid: int) -> str:
    """A process's program, or for a Ray worker its title up to the method ("ray::ImplicitFunc"
    for "ray::ImplicitFunc.train"): the actor's class. OSError once it is gone."""
    program = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    return program.split(".")[0].strip() if program.startswith("ray::") else program


def status_kib(pid: int | str, name: str) -> int:
    """One KiB figure of a process's /proc status (VmRSS, RssAnon); 0 where it has none."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1])
    return 0


def rss_mib(pid: int | str = "self") -> float:
    """A process's resident memory (this one's by default)."""
    return status_kib(pid, "VmRSS") / 1024
