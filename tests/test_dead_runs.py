"""A dead run never blocks the next: killed clients lose their lock within seconds, no side waits on a dead peer."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from fleettickets.db import connect, lock_holder
from fleettickets.errors import ConfigError
from fleettickets.migrate import apply_migrations, read_migrations
from fleettickets.settings import Settings
from fleettickets_dev.sample_stream import write_sample_stream
from tests.fix_db import migrations_copy
from tests.stream_tools import PREFIX, bucket_keys, db_state, expected_state, job_env, upload

# Big enough that the baseline's merge statement runs for seconds on a loaded
# 2-core machine, small enough to write and upload in about a second.
BIG_BASELINE_ROWS = 30_000


def session_settings(conn: psycopg.Connection) -> dict[str, str]:
    names = [
        "client_connection_check_interval",
        "tcp_keepalives_idle",
        "tcp_keepalives_interval",
        "tcp_keepalives_count",
        "tcp_user_timeout",
        "idle_in_transaction_session_timeout",
        "statement_timeout",
    ]
    return dict(
        conn.execute(
            "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name = ANY(%s)", (names,)
        ).fetchall()
    )


def test_every_session_abandons_a_dead_peer(db_url: str) -> None:
    with connect(Settings(database_url=db_url)) as conn:
        assert session_settings(conn) == {
            "client_connection_check_interval": "2000ms",
            "tcp_keepalives_idle": "30s",
            "tcp_keepalives_interval": "10s",
            "tcp_keepalives_count": "3",
            "tcp_user_timeout": "60000ms",
            "idle_in_transaction_session_timeout": "600000ms",
            "statement_timeout": "0ms",
        }
        client = conn.info.get_parameters()
        assert {
            k: client.get(k)
            for k in (
                "keepalives",
                "keepalives_idle",
                "keepalives_interval",
                "keepalives_count",
                "tcp_user_timeout",
                "connect_timeout",
            )
        } == {
            "keepalives": "1",
            "keepalives_idle": "30",
            "keepalives_interval": "10",
            "keepalives_count": "3",
            "tcp_user_timeout": "60000",
            "connect_timeout": "10",
        }
        assert client["application_name"] == "fleettickets"


def test_a_database_url_keeps_its_own_options_and_keywords(db_url: str) -> None:
    url = db_url + "?keepalives_idle=45&options=-c%20statement_timeout%3D5min%20-c%20tcp_keepalives_idle%3D45"
    with connect(Settings(database_url=url)) as conn:
        server = session_settings(conn)
        assert conn.info.get_parameters()["keepalives_idle"] == "45"
    assert server["statement_timeout"] == "300000ms" and server["tcp_keepalives_idle"] == "45s"
    assert server["client_connection_check_interval"] == "2000ms" and server["tcp_keepalives_count"] == "3"


def test_pgoptions_still_apply_when_the_url_has_no_options(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGOPTIONS", "-c statement_timeout=7min")
    with connect(Settings(database_url=db_url)) as conn:
        server = session_settings(conn)
    assert server["statement_timeout"] == "420000ms" and server["client_connection_check_interval"] == "2000ms"


def test_a_bad_option_fails_with_a_message_but_no_password(db_url: str) -> None:
    parts = urlsplit(db_url)
    url = parts._replace(
        netloc=f"postgres:pw-never-shown@{parts.hostname}:{parts.port}", query="options=-c%20no_such_setting%3D1"
    ).geturl()
    with pytest.raises(ConfigError) as failure:
        connect(Settings(database_url=url))
    assert "DATABASE_URL is not a valid connection string" in str(failure.value)
    assert "no_such_setting" in str(failure.value) and "pw-never-shown" not in str(failure.value)


HOLD_LOCK_IN_A_LONG_STATEMENT = """
import sys
from fleettickets.db import connect, job_lock
from fleettickets.settings import Settings
with connect(Settings(database_url=sys.argv[1]), autocommit=True) as conn, job_lock(conn, "ingest"):
    conn.execute("SELECT pg_sleep(%s)", (float(sys.argv[2]),))
"""


def wait_for_statement(conn: psycopg.Connection, pattern: str, timeout: float = 60) -> int:
    """The pid of a fleettickets session running a statement like `pattern`, once one is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'fleettickets' "
            "AND state = 'active' AND query LIKE %s",
            (pattern,),
        ).fetchone()
        if row:
            return int(row[0])
        time.sleep(0.02)
    raise AssertionError(f"no fleettickets session ran {pattern!r} within {timeout} s")


def seconds_until_gone(conn: psycopg.Connection, pid: int, timeout: float = 60) -> float:
    started = time.monotonic()
    while conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
        assert time.monotonic() - started < timeout, f"backend {pid} outlived its killed client by {timeout} s"
        time.sleep(0.02)
    return time.monotonic() - started


def kill_during(conn: psycopg.Connection, process: subprocess.Popen[str], pattern: str) -> int:
    try:
        pid = wait_for_statement(conn, pattern)
    except AssertionError:
        process.kill()
        raise AssertionError(process.communicate()[1]) from None
    process.send_signal(signal.SIGKILL)
    process.communicate()
    return pid


@pytest.mark.parametrize("check_interval_off", [False, True], ids=["ours", "check-disabled-by-url"])
def test_a_killed_client_loses_its_lock_within_seconds(db_url: str, check_interval_off: bool) -> None:
    """The statement would run for minutes; the server cancels it a moment after the client dies."""
    url = db_url + ("?options=-c%20client_connection_check_interval%3D0" if check_interval_off else "")
    sleep = 6 if check_interval_off else 300
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK_IN_A_LONG_STATEMENT, url, str(sleep)], stderr=subprocess.PIPE, text=True
    )
    with psycopg.connect(db_url, autocommit=True) as observer:
        backend = kill_during(observer, process, "SELECT pg_sleep%")
        assert lock_holder(observer, "ingest").pid == backend  # type: ignore[union-attr]
        gone = seconds_until_gone(observer, backend)
        assert lock_holder(observer, "ingest") is None
    print(f"killed client's session gone {gone:.1f} s after the kill (check interval off: {check_interval_off})")
    if check_interval_off:
        # The control: without the check the dead client's statement runs to its end.
        assert gone > 3, gone
    else:
        assert gone < 10, gone


@pytest.fixture(scope="module")
def big_stream(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_sample_stream(
        tmp_path_factory.mktemp("big"), baseline_rows=BIG_BASELINE_ROWS, deltas=2, delta_rows=200
    )


def test_ingest_killed_mid_merge_then_an_immediate_rerun_loads_everything_once(
    settings: Settings, big_stream: list[Path], tmp_path: Path
) -> None:
    upload(settings, big_stream)
    env = job_env(settings.database_url, settings)
    process = subprocess.Popen(
        [sys.executable, "-m", "fleettickets", "ingest", "--apply"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    with psycopg.connect(settings.database_url, autocommit=True) as observer:
        backend = kill_during(observer, process, "%INSERT INTO tickets.inc %")
        killed_at = time.monotonic()
        rerun = subprocess.Popen(
            [sys.executable, "-m", "fleettickets", "ingest", "--apply"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        abandoned = seconds_until_gone(observer, backend)
        _, rerun_log = rerun.communicate(timeout=120)
        rerun_seconds = time.monotonic() - killed_at
        assert rerun.returncode == 0, rerun_log
        files = observer.execute(
            "SELECT file_key, rows_inserted, rows_updated, run_id, merge_seconds FROM tickets.ingest_files "
            "ORDER BY file_ts"
        ).fetchall()
        versions = observer.execute("SELECT count(*) FROM tickets.inc_versions").fetchone()[0]
        runs = observer.execute("SELECT status, backend_pid FROM tickets.ingest_runs ORDER BY started_at").fetchall()
    expected = expected_state(big_stream)
    assert db_state(settings.database_url) == expected
    assert [f[0] for f in files] == [PREFIX + "changes/" + p.name for p in big_stream]
    assert files[0][1] == len(expected_state(big_stream[:1])), "the baseline applied once, whole, by the rerun"
    assert len({f[3] for f in files}) == 1
    assert versions == sum(f[1] + f[2] for f in files), "one version per applied change, none twice"
    assert runs == [("running", backend), ("ok", runs[1][1])]
    assert bucket_keys(settings) == sorted(PREFIX + "processed/" + p.name for p in big_stream)
    assert abandoned < 10, abandoned
    print(
        f"SIGKILL mid-merge: session gone {abandoned:.1f} s after the kill, rerun done after {rerun_seconds:.1f} s "
        f"(its baseline merge took {files[0][4]} s)"
    )


SLOW_MIGRATION = "-- slow\nCREATE TABLE tickets.slow_done (x int);\nSELECT pg_sleep(300);\n"
MIGRATE_FOLDER = """
import sys
from pathlib import Path
from fleettickets.db import connect
from fleettickets.migrate import apply_migrations
from fleettickets.settings import Settings
with connect(Settings(database_url=sys.argv[1]), autocommit=True) as conn:
    apply_migrations(conn, Path(sys.argv[2]))
"""


def test_migrate_killed_mid_migration_then_an_immediate_rerun_completes(empty_db_url: str, tmp_path: Path) -> None:
    folder = migrations_copy(tmp_path)
    (folder / "97_slow.sql").write_text(SLOW_MIGRATION)
    process = subprocess.Popen(
        [sys.executable, "-c", MIGRATE_FOLDER, empty_db_url, str(folder)], stderr=subprocess.PIPE, text=True
    )
    with psycopg.connect(empty_db_url, autocommit=True) as observer:
        kill_during(observer, process, "%pg_sleep(300)%")
    # Not applied, so it may still change: the rerun finds the lock free, not a dead statement's.
    (folder / "97_slow.sql").write_text(SLOW_MIGRATION.replace("300", "0"))
    started = time.monotonic()
    with connect(Settings(database_url=empty_db_url), autocommit=True) as conn:
        assert apply_migrations(conn, folder) == ["97_slow.sql"]
        ledger = conn.execute("SELECT filename FROM tickets.schema_migrations ORDER BY filename").fetchall()
        assert conn.execute("SELECT to_regclass('tickets.slow_done') IS NOT NULL").fetchone() == (True,)
    assert time.monotonic() - started < 30
    assert [r[0] for r in ledger] == sorted(m.filename for m in read_migrations(folder))
