"""The migrations runner: order, idempotence, drift, dry run and concurrent runs."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest

from fleettickets.errors import MigrationError
from fleettickets.migrate import (
    apply_migrations,
    default_migrations_dir,
    pending_migrations,
    read_migrations,
)
from tests.fix_db import migrations_copy


def ledger(conn: psycopg.Connection) -> list[tuple[str, str]]:
    return conn.execute("SELECT filename, checksum FROM tickets.schema_migrations ORDER BY filename").fetchall()


def test_every_migration_has_a_header_comment() -> None:
    for migration in read_migrations(default_migrations_dir()):
        assert migration.description, f"{migration.filename} needs a leading -- comment"


def test_applies_all_in_order_then_rerun_is_a_noop(empty_db_url: str) -> None:
    files = [m.filename for m in read_migrations(default_migrations_dir())]
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        assert apply_migrations(conn) == files
        first = conn.execute("SELECT filename, applied_at FROM tickets.schema_migrations ORDER BY filename").fetchall()
        assert apply_migrations(conn) == []
        again = conn.execute("SELECT filename, applied_at FROM tickets.schema_migrations ORDER BY filename").fetchall()
    assert [f for f, _ in first] == sorted(files)
    assert again == first


def test_dry_run_lists_pending_and_writes_nothing(empty_db_url: str) -> None:
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        plan = pending_migrations(conn)
        assert [m.filename for m in plan.pending][:3] == [
            "01_tickets_schema.sql",
            "02_import_meta.sql",
            "03_inc_columns.sql",
        ]
        assert plan.applied == []
        assert conn.execute("SELECT to_regnamespace('tickets')").fetchone() == (None,)


def test_changed_applied_migration_is_refused(empty_db_url: str, tmp_path: Path) -> None:
    folder = migrations_copy(tmp_path)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        apply_migrations(conn, folder)
        before = ledger(conn)
        target = folder / "02_import_meta.sql"
        target.write_text(target.read_text() + "\n-- an innocent-looking edit\n")
        with pytest.raises(
            MigrationError, match=r"02_import_meta.sql has changed since it was applied \(checksum drift"
        ):
            apply_migrations(conn, folder)
        assert ledger(conn) == before


def test_deleted_applied_migration_is_refused(empty_db_url: str, tmp_path: Path) -> None:
    folder = migrations_copy(tmp_path)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        apply_migrations(conn, folder)
        (folder / "03_inc_columns.sql").unlink()
        with pytest.raises(MigrationError, match="03_inc_columns.sql is recorded as applied but is missing"):
            apply_migrations(conn, folder)


def test_failing_migration_rolls_back_alone(empty_db_url: str, tmp_path: Path) -> None:
    folder = migrations_copy(tmp_path)
    (folder / "98_good.sql").write_text("-- adds a table\nCREATE TABLE tickets.good (x int);\n")
    (folder / "99_bad.sql").write_text(
        "-- half good, half broken\nCREATE TABLE tickets.half (x int);\nSELECT no_such_function();\n"
    )
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        with pytest.raises(MigrationError, match="99_bad.sql failed and was rolled back"):
            apply_migrations(conn, folder)
        names = [f for f, _ in ledger(conn)]
        assert "98_good.sql" in names and "99_bad.sql" not in names
        assert conn.execute("SELECT to_regclass('tickets.half')").fetchone() == (None,)
        assert conn.execute("SELECT to_regclass('tickets.good')").fetchone() == ("tickets.good",)


def test_new_migration_numbered_below_applied_one_is_refused(empty_db_url: str, tmp_path: Path) -> None:
    folder = migrations_copy(tmp_path)
    (folder / "90_later.sql").write_text("-- later\nSELECT 1;\n")
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        apply_migrations(conn, folder)
        (folder / "89_sneaked_in.sql").write_text("-- earlier\nSELECT 1;\n")
        with pytest.raises(MigrationError, match="89_sneaked_in.sql is numbered below"):
            apply_migrations(conn, folder)


def test_bad_file_names_and_duplicate_numbers_are_refused(tmp_path: Path) -> None:
    (tmp_path / "1-oops.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="1-oops.sql: migration files must be named"):
        read_migrations(tmp_path)
    (tmp_path / "1-oops.sql").unlink()
    (tmp_path / "05_a.sql").write_text("SELECT 1;")
    (tmp_path / "05_b.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="05_a.sql and 05_b.sql share the number 5"):
        read_migrations(tmp_path)


def test_concurrent_runs_apply_each_migration_once(empty_db_url: str, tmp_path: Path) -> None:
    folder = migrations_copy(tmp_path)
    # A slow migration widens the window in which both runs are active.
    (folder / "97_slow.sql").write_text(
        "-- slow\nSELECT pg_sleep(0.5);\nCREATE TABLE tickets.applied_once (x int);\n"
        "INSERT INTO tickets.applied_once VALUES (1);\n"
    )
    results: dict[int, list[str]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run(n: int) -> None:
        try:
            with psycopg.connect(empty_db_url, autocommit=True) as conn:
                start.wait()
                results[n] = apply_migrations(conn, folder)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    applied = sorted(results[1] + results[2])
    assert applied == sorted(m.filename for m in read_migrations(folder))
    assert [] in (results[1], results[2])
    with psycopg.connect(empty_db_url) as conn:
        assert conn.execute("SELECT count(*) FROM tickets.applied_once").fetchone() == (1,)


def test_a_run_that_waited_says_what_the_other_run_applied(empty_db_url: str, tmp_path: Path) -> None:
    from fleettickets.db import job_lock
    from fleettickets.migrate import migrate_database
    from fleettickets.settings import Settings

    results = []
    with psycopg.connect(empty_db_url, autocommit=True) as holder, job_lock(holder, "migrate"):
        waiting = threading.Thread(target=lambda: results.append(migrate_database(Settings(database_url=empty_db_url))))
        waiting.start()
        with psycopg.connect(empty_db_url, autocommit=True) as probe:  # wait until it queues on the lock
            for _ in range(200):
                if probe.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                ).fetchone()[0]:
                    break
                threading.Event().wait(0.05)
        applied = apply_migrations(holder)
    waiting.join(60)

    (plan,) = results
    assert plan.pending == [] and plan.applied == []
    assert plan.applied_meanwhile == applied and len(applied) == len(read_migrations(default_migrations_dir()))
