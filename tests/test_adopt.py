"""Adopting the earlier loader's database: recognise, convert in one transaction, continue the stream."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from fleettickets.clock import EAT
from fleettickets.db import lock_key
from fleettickets.errors import EXIT_LOCKED
from fleettickets.ingest import run_ingest
from fleettickets.settings import Settings
from fleettickets_dev.faults import CRASH_EXIT_STATUS
from fleettickets_dev.sample_stream import write_sample_stream
from tests.deployed_db import READER_ROLE, build_deployed_db
from tests.fix_db import scratch_database
from tests.stream_tools import PREFIX, bucket_keys, db_state, expected_state, job_env, run_cli, upload

PROCESSED = 4  # files the earlier loader applied; the rest wait in changes/

# What has value, read the same way before and after: (name, query on the deployed
# schema, query on the adopted one).
KEPT = {
    "tickets": ("SELECT ticket_id, raw FROM tickets.inc ORDER BY 1",) * 2,
    # Tickets under a cluster code (QOA, PTMP) are placed by the alias target now, as the loader mapped them.
    "ticket points": (
        "SELECT ticket_id, ST_AsText(geom), geo_source FROM tickets.inc "
        "WHERE raw ->> 'cluster' NOT IN ('QOA', 'PTMP') ORDER BY 1",
    )
    * 2,
    "unknown column": ("SELECT ticket_id, dispatcher_note FROM tickets.inc ORDER BY 1",) * 2,
    "gazetteer clusters": (
        "SELECT cluster_key, cluster, latitude, longitude, ST_AsText(geom), provider, query, "
        "verified, created_at, updated_at FROM tickets.geo_clusters ORDER BY 1",
    )
    * 2,
    "gazetteer locations": (
        "SELECT location_key, location_name, latitude, longitude, provider, verified, "
        "created_at, updated_at FROM tickets.geo_locations ORDER BY 1",
    )
    * 2,
    "aliases": ("SELECT alias_key, cluster_key, note, created_at FROM tickets.cluster_aliases ORDER BY 1",) * 2,
    "closures": (
        "SELECT ticket_id, observed_at, closed_at, owner, cluster, mttr_hours, sla_status, captured_run "
        "FROM tickets.closure_events ORDER BY 1, 2",
    )
    * 2,
    "daily rows": (
        "SELECT snapshot_date, open_total, open_breached, closed_today, captured_at "
        "FROM tickets.inc_daily_snapshot ORDER BY 1",
        "SELECT snapshot_date, open_total, open_breached, closed_today, as_of "
        "FROM tickets.inc_daily_snapshot WHERE snapshot_date IN "
        "(SELECT snapshot_date FROM tickets.deployed_inc_daily_snapshot) ORDER BY 1",
    ),
    "daily rows, whole": (
        "SELECT * FROM tickets.inc_daily_snapshot ORDER BY 1",
        "SELECT * FROM tickets.deployed_inc_daily_snapshot ORDER BY 1",
    ),
    "watermark": ("SELECT metadata FROM tickets.import_meta",) * 2,
    "unknown table": ("SELECT * FROM tickets.operator_notes ORDER BY 1",) * 2,
    "other system": ("SELECT plate, last_ping, ST_AsText(geom), fleet.vehicle_count() FROM fleet.vehicles",) * 2,
}
PICTURE_SQL = """
SELECT n.nspname, c.relname, c.relkind, c.relacl::text,
       (SELECT string_agg(attname || ':' || format_type(atttypid, atttypmod), ',' ORDER BY attnum)
          FROM pg_attribute WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
 UNION ALL
SELECT n.nspname, p.proname || '(' || oidvectortypes(p.proargtypes) || ')', 'f', p.proacl::text, md5(p.prosrc)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
 ORDER BY 1, 2, 3, 4, 5
"""


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """One file a day from 2026-06-13: the earlier loader applied four, three wait."""
    return write_sample_stream(
        tmp_path_factory.mktemp("stream"),
        baseline_rows=2000,
        deltas=6,
        delta_rows=100,
        start=datetime(2026, 6, 13, 6, 0),
        interval_minutes=1440,
    )


@pytest.fixture(scope="module")
def deployed_template(pg_server: str, stream: list[Path]) -> Iterator[str]:
    """The deployed database, built once: each test adopts a copy of its own."""
    with scratch_database(pg_server, None) as url:
        build_deployed_db(url, stream[:PROCESSED])
        yield urlsplit(url).path.lstrip("/")


@pytest.fixture
def deployed_db_url(pg_server: str, deployed_template: str) -> Iterator[str]:
    with scratch_database(pg_server, deployed_template) as url:
        yield url


@pytest.fixture
def settings(deployed_db_url: str, s3_settings: Settings, stream: list[Path]) -> Settings:
    """The deployed database, processed/ holding what it applied and changes/ the rest."""
    settings = Settings(**{**s3_settings.__dict__, "database_url": deployed_db_url})
    upload(settings, stream[:PROCESSED], folder="processed/")
    upload(settings, stream[PROCESSED:])
    return settings


def cli(settings: Settings, tmp_path: Path, *args: str, **env: str) -> Any:
    return run_cli(list(args), job_env(settings.database_url or "", settings, **env), tmp_path)


def picture(url: str) -> dict[str, Any]:
    """Every relation, column, function body and grant, and every row of every table."""
    with psycopg.connect(url) as conn:
        objects = conn.execute(PICTURE_SQL).fetchall()
        rows = {}
        for schema, name, kind, *_ in objects:
            if kind in ("r", "p"):
                rows[f"{schema}.{name}"] = conn.execute(
                    f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM \"{schema}\".\"{name}\" t"
                ).fetchone()
    return {"objects": objects, "rows": rows}


def elsewhere(url: str) -> dict[str, Any]:
    whole = picture(url)
    ours = ("tickets", "reporting")
    return {
        "objects": [o for o in whole["objects"] if o[0] not in ours],
        "rows": {k: v for k, v in whole["rows"].items() if k.split(".")[0] not in ours},
    }


def kept(url: str, which: int) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(url) as conn:
        return {name: conn.execute(queries[which]).fetchall() for name, queries in KEPT.items()}


def test_migrate_on_the_deployed_database_says_adopt_and_writes_nothing(settings: Settings, tmp_path: Path) -> None:
    before = picture(settings.database_url or "")
    result = cli(settings, tmp_path, "migrate")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "run `fleettickets adopt`" in result.stderr
    status = cli(settings, tmp_path, "status")
    assert "run `fleettickets adopt`" in status.stdout
    assert picture(settings.database_url or "") == before


def test_dry_run_prints_backup_and_plan_and_changes_nothing(
    settings: Settings, stream: list[Path], tmp_path: Path
) -> None:
    before = picture(settings.database_url or "")
    result = cli(settings, tmp_path, "adopt")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(
        'back up first: pg_dump "$DATABASE_URL" --format=custom --schema=tickets --schema=reporting --file='
    )
    assert f"converted: tickets.inc: {len(expected_state(stream[:PROCESSED]))} tickets" in result.stdout
    assert "kept, not recognised: column tickets.inc.dispatcher_note" in result.stdout
    assert "kept, not recognised: table tickets.operator_notes (2 rows, moved as it is)" in result.stdout
    assert lines[-1].startswith("(dry run")
    assert picture(settings.database_url or "") == before


def test_adopt_keeps_every_row_then_the_stream_continues_to_a_fresh_install_s_state(
    settings: Settings, stream: list[Path], tmp_path: Path, db_url: str
) -> None:
    url = settings.database_url or ""
    before, outside = kept(url, 0), elsewhere(url)
    assert cli(settings, tmp_path, "adopt", "--apply").returncode == 0
    assert kept(url, 1) == before
    after_outside = elsewhere(url)
    assert set(after_outside["objects"]) ^ set(outside["objects"]) == set()
    assert after_outside == outside, "nothing outside tickets and reporting changes"

    again = cli(settings, tmp_path, "adopt", "--apply")
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert "schema is up to date" in cli(settings, tmp_path, "migrate").stdout
    with psycopg.connect(url) as conn:
        adopted = conn.execute(
            "SELECT count(*) FROM tickets.inc_versions WHERE source_key = %s",
            (f"adopted:{PREFIX}changes/{stream[PROCESSED - 1].name}",),
        ).fetchone()
        assert adopted == (len(expected_state(stream[:PROCESSED])),)
        schemas = [r[0] for r in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE '%%deployed%%'")]
        assert schemas == []

    ingest = cli(settings, tmp_path, "ingest", "--apply")
    assert ingest.returncode == 0, ingest.stderr
    applied = [line.split()[1].rstrip(":") for line in ingest.stdout.splitlines() if line.startswith("applied ")]
    assert applied == [f"{PREFIX}changes/{p.name}" for p in stream[PROCESSED:]]
    assert db_state(url) == expected_state(stream)
    assert all(k.startswith(PREFIX + "processed/") for k in bucket_keys(settings))

    # A fresh install that ingested everything holds the same tickets.
    run_ingest(Settings(database_url=db_url), apply=True, local_files=stream)
    columns = (
        "ticket_id, raw, normalized_status, is_actionable, cluster, mttr, created_at_service, closed_at, "
        "first_seen_at, owner, sla_status"
    )
    with psycopg.connect(url) as a, psycopg.connect(db_url) as f:
        query = f"SELECT {columns} FROM tickets.inc ORDER BY ticket_id"
        assert a.execute(query).fetchall() == f.execute(query).fetchall()

    after = kept(url, 1)
    for name in (
        "daily rows",
        "daily rows, whole",
        "gazetteer clusters",
        "gazetteer locations",
        "aliases",
        "unknown table",
        "other system",
    ):
        assert after[name] == before[name], name
    assert set(before["closures"]) <= set(after["closures"]), "captured closures survive later captures"


def test_read_entry_points_and_documented_queries_work_with_their_grants(settings: Settings, tmp_path: Path) -> None:
    assert cli(settings, tmp_path, "adopt", "--apply").returncode == 0
    with psycopg.connect(settings.database_url or "") as conn:
        summary = conn.execute("SELECT reporting.fn_tickets_for_map() -> 'summary'").fetchone()[0]  # type: ignore[index]
        assert summary["freshness"]["source_max_key"].endswith(stream_name(PROCESSED - 1))
        payload = conn.execute(
            "SELECT reporting.fn_inc_dashboard(NULL, NULL, 'custom', '2026-06-13', '2026-06-16', 100, %s)",
            (datetime(2026, 6, 16, 12, 0, tzinfo=EAT),),
        ).fetchone()[0]  # type: ignore[index]
        assert payload["open"]["tickets"] > 0
        conn.execute("SELECT ticket_id, hours_open, sla_state, sla_clock_source FROM tickets.inc_open_sla").fetchall()
        conn.execute(
            "SELECT snapshot_date, open_total, open_breached, closed_today "
            "FROM tickets.inc_daily_snapshot ORDER BY snapshot_date"
        ).fetchall()
        privileges = conn.execute(
            "SELECT has_function_privilege(%(r)s, 'reporting.fn_tickets_for_map(boolean)', 'EXECUTE'), "
            "has_table_privilege(%(r)s, 'tickets.inc_open_sla', 'SELECT'), "
            "has_schema_privilege(%(r)s, 'reporting', 'USAGE'), "
            "EXISTS (SELECT FROM pg_proc p, aclexplode(p.proacl) a WHERE p.oid = "
            "'reporting.fn_tickets_for_map(boolean)'::regprocedure AND a.grantee = 0)",
            {"r": READER_ROLE},
        ).fetchone()
    assert privileges == (True, True, True, False)
    status = cli(settings, tmp_path, "status")
    assert status.returncode == 0, status.stderr
    assert f"at {PREFIX}changes/{stream_name(PROCESSED - 1)}, 3 captured day(s) kept as recorded" in status.stdout


def stream_name(index: int) -> str:
    return f"2026-06-{13 + index:02d}T06-00-00.csv"


def test_history_rebuild_from_processed_fills_the_uncaptured_day_and_keeps_the_captured(
    settings: Settings, stream: list[Path], tmp_path: Path, db_url: str
) -> None:
    assert cli(settings, tmp_path, "adopt", "--apply").returncode == 0
    assert cli(settings, tmp_path, "ingest", "--apply").returncode == 0
    before = kept(settings.database_url or "", 1)
    rebuilt = cli(settings, tmp_path, "history", "rebuild", "--from-processed", "--apply")
    assert rebuilt.returncode == 0, rebuilt.stderr
    after = kept(settings.database_url or "", 1)
    assert after["daily rows"] == before["daily rows"]
    assert set(before["closures"]) - set(after["closures"]) == set()

    run_ingest(Settings(database_url=db_url), apply=True, local_files=stream)
    first_day = (
        "SELECT open_total, open_breached, opened, closed_today, open_by_cluster "
        "FROM tickets.inc_daily_snapshot WHERE snapshot_date = '2026-06-13'"
    )
    with psycopg.connect(settings.database_url or "") as a, psycopg.connect(db_url) as f:
        filled = a.execute(first_day).fetchall()
        assert filled and filled == f.execute(first_day).fetchall()
        versions = a.execute(
            "SELECT count(*) FROM tickets.inc_versions WHERE valid_from < %s", (datetime(2026, 6, 14, tzinfo=EAT),)
        ).fetchone()
        assert versions == (len(expected_state(stream[:1])),)


@pytest.mark.parametrize("crash_at", ["adopt-start", "adopt-migrated", "adopt-copied", "adopt-before-commit"])
def test_killed_adoption_leaves_the_database_as_it_was(settings: Settings, tmp_path: Path, crash_at: str) -> None:
    before = picture(settings.database_url or "")
    crashed = cli(settings, tmp_path, "adopt", "--apply", FLEETTICKETS_CRASH_AT=crash_at)
    assert crashed.returncode == CRASH_EXIT_STATUS, crashed.stderr
    assert picture(settings.database_url or "") == before
    assert cli(settings, tmp_path, "adopt", "--apply").returncode == 0
    assert "nothing to do" in cli(settings, tmp_path, "adopt").stdout


def test_killed_after_commit_is_adopted(settings: Settings, tmp_path: Path) -> None:
    crashed = cli(settings, tmp_path, "adopt", "--apply", FLEETTICKETS_CRASH_AT="adopt-after-commit")
    assert crashed.returncode == CRASH_EXIT_STATUS
    assert "nothing to do" in cli(settings, tmp_path, "adopt", "--apply").stdout


def test_a_running_ingest_holds_adoption_off(settings: Settings, tmp_path: Path) -> None:
    with psycopg.connect(settings.database_url or "", autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (lock_key("ingest"),))
        result = cli(settings, tmp_path, "adopt", "--apply")
    assert result.returncode == EXIT_LOCKED
    assert "another fleettickets ingest run holds the lock" in result.stderr


MISFITS = {
    "unknown ledger row": "INSERT INTO tickets.schema_migrations (version) VALUES ('11_inc_extra')",
    "missing documented object": "DROP VIEW tickets.inc_open_sla",
    "unknown view": "CREATE VIEW reporting.weekly AS SELECT count(*) FROM tickets.inc",
    "dependent in another schema": "CREATE VIEW fleet.open_tickets AS SELECT ticket_id FROM tickets.inc",
}
MISFIT_LINES = {
    "unknown ledger row": "tickets.schema_migrations records 11_inc_extra.sql",
    "missing documented object": "view tickets.inc_open_sla is missing",
    "unknown view": "view reporting.weekly is not part of the current schema",
    "dependent in another schema": "view fleet.open_tickets depends on the deployed schema",  # via its rule
}


@pytest.mark.parametrize("misfit", sorted(MISFITS))
def test_what_does_not_fit_is_listed_and_nothing_changes(settings: Settings, tmp_path: Path, misfit: str) -> None:
    with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
        conn.execute(MISFITS[misfit])
    before = picture(settings.database_url or "")
    result = cli(settings, tmp_path, "adopt", "--apply")
    assert result.returncode == 1
    assert "matches neither a fresh database nor the earlier loader's; nothing was changed" in result.stderr
    assert MISFIT_LINES[misfit] in result.stderr.replace("rule _RETURN on ", "")
    assert picture(settings.database_url or "") == before


def test_tables_without_a_ledger_are_refused_by_adopt_and_migrate(empty_db_url: str, tmp_path: Path) -> None:
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA tickets; CREATE TABLE tickets.inc (ticket_id text PRIMARY KEY, raw jsonb)")
    before = picture(empty_db_url)
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": empty_db_url}
    adopt = run_cli(["adopt", "--apply"], env, tmp_path)
    assert adopt.returncode == 1 and "there is no ledger tickets.schema_migrations" in adopt.stderr
    migrate = run_cli(["migrate"], env, tmp_path)
    assert migrate.returncode == 1 and "run `fleettickets adopt`" in migrate.stderr
    assert picture(empty_db_url) == before


def test_a_fresh_database_has_nothing_to_adopt(empty_db_url: str, tmp_path: Path) -> None:
    result = run_cli(["adopt", "--apply"], {"PATH": "/usr/bin:/bin", "DATABASE_URL": empty_db_url}, tmp_path)
    assert result.returncode == 0 and "nothing to adopt" in result.stdout
