"""A throwaway local PostgreSQL cluster in a folder of its own, for the demo and the tests.

Not for production: it trusts every local connection. It works as an ordinary
user and as root (the server refuses to run as root, so root runs it as the
`postgres` system user that Debian's packages create).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from fleettickets.errors import FleetTicketsError

PORT_FILE = "fleettickets.port"
POSTGIS_HINT = (
    "PostGIS is not installed for this PostgreSQL server. On Debian/Ubuntu: "
    "apt-get install postgresql-{major}-postgis-3"
)


@dataclass(frozen=True)
class LocalCluster:
    datadir: Path
    port: int
    bindir: Path

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    @property
    def major_version(self) -> str:
        return (self.datadir / "PG_VERSION").read_text().strip()


def find_bindir() -> Path:
    """The newest PostgreSQL server binaries on this machine (PG_BINDIR overrides)."""
    override = os.environ.get("PG_BINDIR")
    candidates = [Path(override)] if override else []
    candidates += sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        candidates.append(Path(pg_ctl).resolve().parent)
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    raise FleetTicketsError(
        "no PostgreSQL server binaries found (initdb, pg_ctl); on Debian/Ubuntu: "
        "apt-get install postgresql-15 postgresql-15-postgis-3, or set PG_BINDIR"
    )


def _run_as_owner() -> list[str]:
    """Command prefix that drops root to the postgres system user."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise FleetTicketsError(
            "running as root needs a 'postgres' system user to own the local cluster "
            "(Debian's postgresql package creates it)"
        ) from None
    return ["runuser", "-u", "postgres", "--"]


def _chown_for_server(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        for root, dirs, files in os.walk(path):
            os.chown(root, entry.pw_uid, entry.pw_gid)
            for name in dirs + files:
                os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _is_running(bindir: Path, datadir: Path) -> bool:
    result = subprocess.run(
        [*_run_as_owner(), str(bindir / "pg_ctl"), "status", "-D", str(datadir)],
        capture_output=True,
        text=True,
    )
    return result.returncode == 0


def ensure_cluster(datadir: Path, *, port: int | None = None, durable: bool = True) -> LocalCluster:
    """Create the cluster if the folder is empty, start it if stopped, return it."""
    datadir = datadir.resolve()
    bindir = find_bindir()
    prefix = _run_as_owner()
    if not (datadir / "PG_VERSION").exists():
        datadir.mkdir(parents=True, exist_ok=True)
        _chown_for_server(datadir)
        result = subprocess.run(
            [
                *prefix,
                str(bindir / "initdb"),
                "-D",
                str(datadir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise FleetTicketsError(f"initdb failed in {datadir}:\n{result.stderr.strip()}")
    port_file = datadir / PORT_FILE
    if port is None and port_file.exists():
        port = int(port_file.read_text())
    cluster = LocalCluster(datadir=datadir, port=port or free_port(), bindir=bindir)
    if not _is_running(bindir, datadir):
        options = f"-p {cluster.port} -c listen_addresses=127.0.0.1 -k {datadir}"
        if not durable:
            # Throwaway test data: trade crash safety for speed.
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        log = datadir / "server.log"
        result = subprocess.run(
            [
                *prefix,
                str(bindir / "pg_ctl"),
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                str(datadir),
                "-l",
                str(log),
                "-o",
                options,
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            tail = log.read_text()[-2000:] if log.exists() else result.stderr
            raise FleetTicketsError(f"local PostgreSQL did not start:\n{tail}")
        port_file.write_text(str(cluster.port))
    _wait_ready(cluster)
    return cluster


def _wait_ready(cluster: LocalCluster, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", cluster.port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise FleetTicketsError(f"local PostgreSQL on port {cluster.port} did not answer") from None
            time.sleep(0.1)


def stop_cluster(datadir: Path) -> None:
    bindir = find_bindir()
    if _is_running(bindir, datadir):
        subprocess.run(
            [*_run_as_owner(), str(bindir / "pg_ctl"), "stop", "-D", str(datadir), "-m", "fast"],
            check=False,
            capture_output=True,
        )


def postgis_available(conn) -> bool:  # type: ignore[no-untyped-def]
    row = conn.execute("SELECT count(*) FROM pg_available_extensions WHERE name = 'postgis'").fetchone()
    return bool(row and row[0])
