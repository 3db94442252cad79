"""Real PostgreSQL + PostGIS for the tests, never a mock.

Order of preference: TEST_DATABASE_URL (a server where the tests may create
databases); a testcontainers PostGIS where a Docker engine answers; otherwise a
throwaway local cluster started here in a temporary folder.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from fleettickets.migrate import apply_migrations
from fleettickets_dev.localdb import POSTGIS_HINT, ensure_cluster, postgis_available, stop_cluster

# One template per parallel worker (PYTEST_XDIST_WORKER), so workers sharing a
# server (TEST_DATABASE_URL) never drop each other's.
TEMPLATE_DB = "fleettickets_test_template" + os.environ.get("PYTEST_XDIST_WORKER", "")
_db_numbers = itertools.count(1)


def _with_dbname(url: str, dbname: str) -> str:
    """The same server URL with another database name (URLs, like DATABASE_URL)."""
    return urlsplit(url)._replace(path=f"/{dbname}").geturl()


def _docker_answers() -> bool:
    if not (os.environ.get("DOCKER_HOST") or Path("/var/run/docker.sock").exists()):
        return False
    try:
        import docker  # type: ignore[import-untyped]

        client = docker.from_env(timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # any failure means "no usable engine here"
        return False


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """An admin connection string to a PostgreSQL server with PostGIS available."""
    if os.environ.get("TEST_DATABASE_URL"):
        yield os.environ["TEST_DATABASE_URL"]
    elif _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgis/postgis:15-3.4", driver=None) as container:
            yield container.get_connection_url()
    else:
        # Not under pytest's tmp dir: that is private to the user, and as root the
        # server runs as `postgres`, which must be able to reach its folder.
        workdir = Path(tempfile.mkdtemp(prefix="fleettickets-pg-"))
        workdir.chmod(0o755)
        datadir = workdir / "data"
        cluster = ensure_cluster(datadir, durable=False)
        try:
            yield cluster.url()
        finally:
            stop_cluster(datadir)
            shutil.rmtree(workdir, ignore_errors=True)


def _admin(pg_server: str) -> psycopg.Connection:
    return psycopg.connect(pg_server, autocommit=True)


@pytest.fixture(scope="session")
def template_db(pg_server: str, pytestconfig: pytest.Config) -> str:
    """A database with every migration applied, copied for each test module."""
    with _admin(pg_server) as admin:
        if not postgis_available(admin):
            major = admin.info.server_version // 10000
            pytest.exit(POSTGIS_HINT.format(major=major), returncode=1)
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(TEMPLATE_DB)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE_DB)))
    url = _with_dbname(pg_server, TEMPLATE_DB)
    with psycopg.connect(url, autocommit=True) as conn:
        apply_migrations(conn)
        row = conn.execute("SELECT version(), postgis_lib_version()").fetchone()
        assert row is not None
        _server_versions[:] = [f"database server: {row[0]}", f"PostGIS: {row[1]}"]
    if hasattr(pytestconfig, "workeroutput"):  # a parallel worker: the summary is printed by the controller
        pytestconfig.workeroutput["server_versions"] = _server_versions
    return url


def _create_db(pg_server: str, template: str | None) -> str:
    name = f"ft_test_{os.getpid()}_{next(_db_numbers)}"
    with _admin(pg_server) as admin:
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        admin.execute(query)
    return name


def _drop_db(pg_server: str, name: str) -> None:
    with _admin(pg_server) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def scratch_database(pg_server: str, template: str | None) -> Iterator[str]:
    """The URL of a new database copied from `template` (empty when None), dropped afterwards."""
    name = _create_db(pg_server, template)
    try:
        yield _with_dbname(pg_server, name)
    finally:
        _drop_db(pg_server, name)


@pytest.fixture(scope="module")
def module_db_url(pg_server: str, template_db: str) -> Iterator[str]:
    """A migrated database shared by the tests of one module."""
    with scratch_database(pg_server, TEMPLATE_DB) as url:
        yield url


@pytest.fixture
def db_url(pg_server: str, template_db: str) -> Iterator[str]:
    """A migrated database of this test's own."""
    with scratch_database(pg_server, TEMPLATE_DB) as url:
        yield url


@pytest.fixture
def empty_db_url(pg_server: str) -> Iterator[str]:
    """An empty database (no migrations), for migration tests."""
    with scratch_database(pg_server, None) as url:
        yield url


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_url, autocommit=True) as connection:
        yield connection


_server_versions: list[str] = []


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:  # type: ignore[no-untyped-def]
    """A parallel worker finished: keep the server it reported, for the summary."""
    _server_versions[:] = _server_versions or node.workeroutput.get("server_versions", [])


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    for line in _server_versions:
        terminalreporter.write_line(line)


def migrations_copy(tmp_path: Path) -> Path:
    """A writable copy of the migrations folder, for drift tests."""
    from fleettickets.migrate import default_migrations_dir

    target = tmp_path / "migrations"
    target.mkdir()
    for path in default_migrations_dir().glob("*.sql"):
        (target / path.name).write_text(path.read_text())
    return target
