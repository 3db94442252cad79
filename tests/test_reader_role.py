"""fleettickets_reader: a login member reaches the entry points and nothing else, within its guard rails.

Roles are cluster-wide and other test databases share this server, so every
login role here has a name of its own and is dropped afterwards; nothing
assumes the reader role was created by this test's database.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from fleettickets import status as pipeline_status
from fleettickets.migrate import apply_migrations
from fleettickets.report import status_text
from fleettickets.settings import Settings
from tests.crafted import EAT, ago, insert, open_ticket

READER = "fleettickets_reader"
NOW = datetime(2026, 6, 20, 12, 0, tzinfo=EAT)
ENTRY_POINTS = {
    "reporting.fn_inc_trends(date,date,text,text,timestamp with time zone)",
    "reporting.fn_team_closures(date,date,text,timestamp with time zone)",
    "reporting.fn_tickets_for_map(boolean)",
    "reporting.fn_inc_dashboard(text,text,text,date,date,integer,timestamp with time zone)",
    "reporting.fn_dispatch_candidates(double precision,double precision,integer,integer,text,text,text,"
    "timestamp with time zone)",
}
READABLE = {"tickets.inc_open_sla", "tickets.inc_daily_snapshot"}
MAPPED_OPEN = 10_050  # past the 10,000-feature ceiling


def unique(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"


def as_role(url: str, role: str) -> str:
    """The same database, logged in as `role` (the test server trusts local logins)."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return parts._replace(netloc=f"{role}@{host}").geturl()


@pytest.fixture(scope="module")
def owner_url(module_db_url: str) -> str:
    """A database with open tickets past the feature ceiling, a snapshot row and a foreign schema."""
    with psycopg.connect(module_db_url, autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO tickets.inc (ticket_id, raw)
            SELECT 'WOT' || lpad(g::text, 6, '0'),
                   jsonb_build_object('ticket_id', 'WOT' || lpad(g::text, 6, '0'), 'is_actionable', 'true',
                                      'normalized_status', 'open', 'cluster', 'Kayole',
                                      'created_at_service', %s::text,
                                      'latitude', (-1.29 + g * 1e-6)::text, 'longitude', '36.82')
              FROM generate_series(1, %s) AS g
            """,
            (ago(NOW, hours=50), MAPPED_OPEN),
        )
        insert(conn, "NOPOINT", open_ticket(created_at_service=ago(NOW, hours=2)))
        conn.execute(
            "INSERT INTO tickets.inc_daily_snapshot (snapshot_date, as_of, open_total, open_breached, "
            "open_on_first_seen_clock, opened, closed_today, open_by_cluster) "
            "VALUES ('2026-06-19', '2026-06-20 00:00+03', 7, 2, 1, 3, 4, '{}')"
        )
        conn.execute("CREATE SCHEMA fleet_tracking")
        conn.execute("CREATE TABLE fleet_tracking.positions AS SELECT 1 AS vehicle_id")
    return module_db_url


@pytest.fixture(scope="module")
def reader_login(pg_server: str, owner_url: str) -> Iterator[str]:
    """A login member of the reader role, created as docs/operations.md says."""
    name = unique("dashboard_api")
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE {}").format(sql.Identifier(name), sql.Identifier(READER)))
        admin.execute(sql.SQL("ALTER ROLE {} SET statement_timeout = '5s'").format(sql.Identifier(name)))
    yield name
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


@pytest.fixture
def reader(owner_url: str, reader_login: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(as_role(owner_url, reader_login), autocommit=True) as conn:
        yield conn


def dashboard(conn: psycopg.Connection, max_features: Any = "default") -> dict[str, Any]:
    if max_features == "default":
        return conn.execute("SELECT reporting.fn_inc_dashboard(p_now => %s)", (NOW,)).fetchone()[0]
    return conn.execute(
        "SELECT reporting.fn_inc_dashboard(p_max_features => %s, p_now => %s)", (max_features, NOW)
    ).fetchone()[0]


def test_every_entry_point_answers(reader: psycopg.Connection) -> None:
    open_map = reader.execute("SELECT reporting.fn_tickets_for_map()").fetchone()[0]
    assert open_map["summary"]["tickets"] == MAPPED_OPEN + 1
    everything = reader.execute("SELECT reporting.fn_tickets_for_map(p_open_only := false)").fetchone()[0]
    assert everything["summary"]["mapped"] == MAPPED_OPEN
    assert dashboard(reader)["metrics"]["open_by_sla_state"]["breached"] == MAPPED_OPEN
    candidates = reader.execute(
        "SELECT reporting.fn_dispatch_candidates(36.82, -1.29, p_limit => 3, p_now => %s)", (NOW,)
    ).fetchone()[0]
    assert [c["ticket_id"] for c in candidates["candidates"]] == ["WOT000001", "WOT000002", "WOT000003"]
    assert candidates["unplaced_open"] == 1
    trends = reader.execute(
        "SELECT reporting.fn_inc_trends('2026-06-18', '2026-06-19', p_now => %s)", (NOW,)
    ).fetchone()[0]
    assert [(e["created"], e["backlog_end"]) for e in trends["series"]] == [(MAPPED_OPEN, None), (0, 7)]
    teams = reader.execute(
        "SELECT reporting.fn_team_closures('2026-06-19', '2026-06-20', p_now => %s)", (NOW,)
    ).fetchone()[0]
    assert [(t["team"], t["closed"], t["open_now"]) for t in teams["teams"]] == [(None, 0, MAPPED_OPEN + 1)]
    assert reader.execute("SELECT count(*) FROM tickets.inc_open_sla").fetchone()[0] == MAPPED_OPEN + 1
    assert reader.execute(
        "SELECT snapshot_date::text, open_total, closed_today FROM tickets.inc_daily_snapshot"
    ).fetchall() == [("2026-06-19", 7, 4)]


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT count(*) FROM tickets.inc",
        "SELECT count(*) FROM tickets.inc_versions",
        "SELECT * FROM tickets.import_meta",
        "SELECT * FROM tickets.closure_events",
        "SELECT * FROM tickets.geo_clusters",
        "SELECT * FROM tickets.ingest_files",
        "SELECT * FROM tickets.schema_migrations",
        "SELECT * FROM fleet_tracking.positions",
        "DELETE FROM tickets.inc_daily_snapshot",
        "UPDATE tickets.inc_daily_snapshot SET open_total = 0",
        "INSERT INTO tickets.inc (ticket_id, raw) VALUES ('X', '{}')",
        "CREATE TABLE tickets.mine (x int)",
        "CREATE TABLE reporting.mine (x int)",
        "SELECT tickets.eat_ts('2026-06-20 12:00:00')",
        "SELECT count(*) FROM tickets.inc_open_sla_at(now())",
        "SELECT reporting.inc_dashboard_payload()",
        "SELECT reporting.inc_window('today', NULL, NULL, now())",
        "SELECT reporting.caller_reads_tickets()",
        "SELECT * FROM reporting.inc_closed_between(now() - interval '1 day', now(), NULL, NULL)",
        "SELECT reporting.inc_freshness(now())",
        "SELECT reporting.mttr_summary(ARRAY[1, 2])",
        "SELECT * FROM tickets.capture_history()",
        "SELECT tickets.setup_reader_role('someone_else')",
        "SELECT * FROM tickets.inc_as_of(now())",
    ],
)
def test_everything_else_is_refused(reader: psycopg.Connection, statement: str) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        reader.execute(statement)


def test_a_query_past_the_timeout_is_cancelled(reader: psycopg.Connection) -> None:
    assert reader.execute("SHOW statement_timeout").fetchone() == ("5s",)
    started = time.monotonic()
    with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout"):
        reader.execute("SELECT count(*) FROM tickets.inc_open_sla a, tickets.inc_open_sla b, tickets.inc_open_sla c")
    assert 4.5 < time.monotonic() - started < 15


@pytest.mark.parametrize("asked", [None, 10_001, 1_000_000])
def test_a_reader_cannot_lift_the_feature_ceiling(reader: psycopg.Connection, asked: int | None) -> None:
    payload = dashboard(reader, asked)
    assert payload["filters"]["max_features"] == 10_000
    assert len(payload["open"]["features"]) == 10_000
    assert payload["open"]["over_limit"] == MAPPED_OPEN - 10_000


def test_below_the_ceiling_a_reader_gets_what_it_asks(reader: psycopg.Connection) -> None:
    payload = dashboard(reader, 25)
    assert (payload["filters"]["max_features"], len(payload["open"]["features"])) == (25, 25)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="p_max_features must be at least 1"):
        dashboard(reader, 0)


def test_the_ceiling_follows_set_role_and_spares_the_owner(owner_url: str) -> None:
    with psycopg.connect(owner_url, autocommit=True) as conn:
        assert len(dashboard(conn, None)["open"]["features"]) == MAPPED_OPEN
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(READER)))  # as PostgREST switches roles
        assert len(dashboard(conn, None)["open"]["features"]) == 10_000


def test_exactly_the_entry_points_and_two_relations_are_granted(owner_url: str) -> None:
    with psycopg.connect(owner_url) as conn:
        executable = {
            r[0]
            for r in conn.execute(
                "SELECT p.oid::regprocedure::text FROM pg_proc p "
                "WHERE p.pronamespace IN ('tickets'::regnamespace, 'reporting'::regnamespace) "
                "AND has_function_privilege(%s, p.oid, 'EXECUTE')",
                (READER,),
            )
        }
        readable = {
            r[0]
            for r in conn.execute(
                "SELECT c.oid::regclass::text FROM pg_class c "
                "WHERE c.relnamespace IN ('tickets'::regnamespace, 'reporting'::regnamespace) "
                "AND c.relkind IN ('r', 'v', 'm', 'p', 'f') AND has_table_privilege(%s, c.oid, 'SELECT')",
                (READER,),
            )
        }
        public_execute = [
            r[0]
            for r in conn.execute(
                "SELECT p.oid::regprocedure::text FROM pg_proc p "
                "WHERE p.pronamespace IN ('tickets'::regnamespace, 'reporting'::regnamespace) "
                "AND (p.proacl IS NULL OR EXISTS (SELECT FROM aclexplode(p.proacl) a "
                "                                 WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'))"
            )
        ]
        definer = {
            r[0]: r[1]
            for r in conn.execute(
                "SELECT p.oid::regprocedure::text, p.proconfig FROM pg_proc p "
                "WHERE p.pronamespace = 'reporting'::regnamespace AND p.prosecdef"
            )
        }
    assert executable == ENTRY_POINTS
    assert readable == READABLE
    assert public_execute == [], "a migration that adds a function must REVOKE EXECUTE ... FROM PUBLIC"
    assert set(definer) == ENTRY_POINTS
    assert all("search_path=pg_catalog, public, pg_temp" in config for config in definer.values())


def test_the_view_is_the_sla_function_at_now(owner_url: str) -> None:
    with psycopg.connect(owner_url) as conn:  # one transaction: one now()
        diff = conn.execute(
            "(SELECT * FROM tickets.inc_open_sla EXCEPT ALL SELECT * FROM tickets.inc_open_sla_at(now())) "
            "UNION ALL "
            "(SELECT * FROM tickets.inc_open_sla_at(now()) EXCEPT ALL SELECT * FROM tickets.inc_open_sla)"
        ).fetchall()
        count = conn.execute("SELECT count(*) FROM tickets.inc_open_sla").fetchone()[0]
    assert (diff, count) == ([], MAPPED_OPEN + 1)


def test_status_reports_the_role_and_its_logins(owner_url: str, reader_login: str, s3_settings: Settings) -> None:
    settings = Settings(**{**s3_settings.__dict__, "database_url": owner_url})
    facts = pipeline_status.gather(settings)
    reader = facts.reader
    assert (reader.role, reader.exists, reader.granted, reader.statement_timeout) == (READER, True, True, "5s")
    assert pipeline_status.ReaderLogin(name=reader_login, statement_timeout="5s") in reader.logins


@pytest.fixture
def unprivileged_owner(pg_server: str) -> Iterator[tuple[str, str]]:
    """A fresh database owned by a login that may not create roles (PostGIS installed for it)."""
    owner, dbname = unique("ft_owner"), unique("ft_unprivileged")
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN NOCREATEROLE").format(sql.Identifier(owner)))
        admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(dbname), sql.Identifier(owner)))
    url = urlsplit(pg_server)._replace(path=f"/{dbname}").geturl()
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("CREATE EXTENSION postgis")
    yield as_role(url, owner), owner
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(dbname)))
        admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(owner)))


def test_migrations_apply_for_an_owner_who_may_not_create_roles(
    unprivileged_owner: tuple[str, str], s3_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, owner = unprivileged_owner
    notices: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.add_notice_handler(lambda d: notices.append(f"{d.message_primary} | {d.message_hint}"))
        assert "24_reader_role.sql" in apply_migrations(conn)
        missing = unique("ft_reader")
        assert conn.execute("SELECT tickets.setup_reader_role(%s)", (missing,)).fetchone() == ("missing",)
    assert any(
        f"role {missing} is missing and {owner} may not create roles" in n and f"CREATE ROLE {missing} NOLOGIN" in n
        for n in notices
    ), notices
    monkeypatch.setattr(pipeline_status, "READER_ROLE", missing)
    settings = Settings(**{**s3_settings.__dict__, "database_url": url})
    status = pipeline_status.report(settings, now=NOW + timedelta(days=1))
    assert status.facts.reader == pipeline_status.ReaderFacts(role=missing, exists=False)
    assert (
        f"reader     role {missing} is missing: a superuser runs CREATE ROLE {missing} NOLOGIN, then the "
        "schema owner runs SELECT tickets.setup_reader_role() (docs/operations.md)"
    ) in status_text(status)
