"""A database shaped the way the earlier loader left it, for the adoption tests.

Built from the deployed system's documentation only: migrations 01-09 under
the same names as the deployed ones, a hand-written 10_inc_history_capture.sql
(tests/data/deployed/), the loader's own ledger with other columns than ours,
tickets loaded as the feed contract reads the files already in processed/,
reviewed gazetteers, captured history, a column and a table the current
schema does not know, another system's schema, and a reader role's grants.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from fleettickets.clock import EAT
from fleettickets.migrate import default_migrations_dir
from fleettickets.source import parse_file_ts
from tests.stream_tools import PREFIX, expected_state

DEPLOYED_DIR = Path(__file__).parent / "data" / "deployed"
DEPLOYED_FILES = [
    "01_tickets_schema.sql",
    "02_import_meta.sql",
    "03_inc_columns.sql",
    "04_inc_latlng.sql",
    "05_inc_geography.sql",
    "06_inc_mttr_minutes.sql",
    "07_inc_drop_service_type.sql",
    "08_inc_open_sla_view.sql",
    "09_inc_dashboard_fn.sql",
    "10_inc_history_capture.sql",
]
READER_ROLE = "fleetops_map_reader"

OLD_LEDGER_SQL = """
CREATE TABLE tickets.schema_migrations (
    version    text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now(),
    success    boolean NOT NULL DEFAULT true
)
"""
OTHER_SYSTEM_SQL = """
CREATE SCHEMA fleet;
CREATE TABLE fleet.vehicles (plate text PRIMARY KEY, last_ping timestamptz, geom geometry(Point, 4326));
INSERT INTO fleet.vehicles VALUES ('KBX 123A', '2026-06-14 10:00+03', ST_SetSRID(ST_MakePoint(36.9, -1.28), 4326)),
                                  ('KCC 907T', '2026-06-15 07:10+03', NULL);
CREATE FUNCTION fleet.vehicle_count() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM fleet.vehicles';
"""
# Not in the documentation's list, but where a deployment has it, its rows are the operators'.
ALIASES_SQL = """
CREATE TABLE tickets.cluster_aliases (alias_key text PRIMARY KEY, cluster_key text NOT NULL, note text,
                                      created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO tickets.cluster_aliases VALUES ('qoa', 'quarry road', 'export code', '2026-06-02 10:00+03'),
                                           ('ptmp', 'pipeline', 'export code', '2026-06-02 10:00+03'),
                                           ('kyl', 'kayole', 'added by hand', '2026-06-09 16:20+03');
"""
UNKNOWN_SQL = """
ALTER TABLE tickets.inc ADD COLUMN dispatcher_note text;
CREATE TABLE tickets.operator_notes (ticket_id text, note text, written_at timestamptz DEFAULT now());
INSERT INTO tickets.operator_notes (ticket_id, note) VALUES ('X1', 'checked by phone'), ('X2', 'duplicate');
"""


def build_deployed_db(url: str, processed: list[Path]) -> dict[str, Any]:
    """Load `processed` (baseline first) as the deployed loader would have; return the watermark key."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        conn.execute(OTHER_SYSTEM_SQL)
        for name in DEPLOYED_FILES:
            folder = DEPLOYED_DIR if name.startswith("10_") else default_migrations_dir()
            conn.execute((folder / name).read_text(encoding="utf-8"))
        conn.execute(OLD_LEDGER_SQL)
        for i, name in enumerate(DEPLOYED_FILES):
            conn.execute(
                "INSERT INTO tickets.schema_migrations (version, applied_at) VALUES (%s, %s)",
                (name.removesuffix(".sql"), datetime(2026, 5, 1 + i, tzinfo=EAT)),
            )
        conn.execute(UNKNOWN_SQL)
        conn.execute(ALIASES_SQL)
        _gazetteers(conn, expected_state(processed))
        _tickets(conn, expected_state(processed))
        watermark = f"{PREFIX}changes/{processed[-1].name}"
        conn.execute(
            "INSERT INTO tickets.import_meta (dataset, metadata) VALUES ('inc', %s)",
            (Jsonb({"source_max_key": watermark, "source_etag": '"0f1e2d"', "rows": 1234}),),
        )
        _history(conn, processed)
        _grants(conn)
    return {"watermark_key": watermark}


def _gazetteers(conn: psycopg.Connection, state: dict[str, dict[str, Any]]) -> None:
    clusters = sorted({r["cluster"] for r in state.values() if r.get("cluster")})
    for i, cluster in enumerate(clusters):
        # Every third cluster reviewed and moved by hand to a point no geocoder gave.
        verified = i % 3 == 0
        lat, lon = -1.2 - i * 0.01 - (0.0012345 if verified else 0), 36.8 + i * 0.01
        conn.execute(
            "INSERT INTO tickets.geo_clusters (cluster_key, cluster, latitude, longitude, provider, query, verified, "
            "created_at, updated_at) VALUES (tickets.place_key(%s), %s, %s, %s, 'locationiq', %s, %s, "
            "'2026-06-01 09:00+03', %s) ON CONFLICT DO NOTHING",
            (
                cluster,
                cluster,
                lat,
                lon,
                f"{cluster}, Kenya",
                verified,
                "2026-06-12 15:30+03" if verified else "2026-06-01 09:00+03",
            ),
        )
    locations = sorted({r["location_name"] for r in state.values() if r.get("location_name")})[:40]
    for i, name in enumerate(locations):
        point = (None, None) if i % 7 == 6 else (-1.3 + i * 0.001, 36.9 - i * 0.001)
        conn.execute(
            "INSERT INTO tickets.geo_locations (location_key, location_name, latitude, longitude, provider, verified) "
            "VALUES (tickets.place_key(%s), %s, %s, %s, 'locationiq', %s) ON CONFLICT DO NOTHING",
            (name, name, *point, i % 4 == 0 and point[0] is not None),
        )


def _tickets(conn: psycopg.Connection, state: dict[str, dict[str, Any]]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO tickets.inc (ticket_id, raw, ingested_at, dispatcher_note) VALUES (%s, %s, %s, %s)",
            [
                (tid, Jsonb(raw), datetime(2026, 6, 15, 6, 30, tzinfo=EAT), "call first" if i % 50 == 0 else None)
                for i, (tid, raw) in enumerate(state.items())
            ],
        )


def _history(conn: psycopg.Connection, processed: list[Path]) -> None:
    """Captured rows with figures no computation would give: they must come through unchanged.

    Captured from the day after the stream's first (a day left to fill from
    processed/) through the watermark's day.
    """
    first_file, watermark = parse_file_ts(processed[0].name), parse_file_ts(processed[-1].name)
    assert first_file and watermark
    first_day, last_day = first_file.date() + timedelta(days=1), watermark.date()
    first_day = min(first_day, last_day)
    for d in range((last_day - first_day).days + 1):
        day = first_day + timedelta(days=d)
        conn.execute(
            "INSERT INTO tickets.inc_daily_snapshot (snapshot_date, open_total, open_breached, closed_today, "
            "open_unmapped, captured_at) VALUES (%s, %s, %s, %s, %s, %s)",
            (
                day,
                1700 + 13 * d,
                400 + d,
                37 + d,
                d % 2,
                datetime.combine(day, datetime.min.time(), EAT) + timedelta(hours=19, minutes=40),
            ),
        )
    rows = conn.execute(
        "SELECT ticket_id, closed_at, owner, cluster FROM tickets.inc "
        "WHERE NOT is_actionable ORDER BY ticket_id LIMIT 150"
    ).fetchall()
    start = datetime.combine(first_day, datetime.min.time(), EAT) + timedelta(hours=8)
    for i, (tid, closed_at, owner, cluster) in enumerate(rows):
        observed = min(start + timedelta(minutes=13 * i), watermark - timedelta(minutes=10))
        conn.execute(
            "INSERT INTO tickets.closure_events (ticket_id, closed_at, observed_at, owner, cluster, mttr_hours, "
            "sla_status, captured_run) VALUES (%s, %s, %s, %s, %s, %s, 'Compliant', %s)",
            (tid, closed_at, observed, owner, cluster, 1.5 + i / 10, f"run-{i // 10}"),
        )


def _grants(conn: psycopg.Connection) -> None:
    conn.execute(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{READER_ROLE}') "
        f"THEN CREATE ROLE {READER_ROLE}; END IF; END $$"
    )
    conn.execute(f"GRANT USAGE ON SCHEMA tickets, reporting TO {READER_ROLE}")
    conn.execute(f"GRANT SELECT ON tickets.inc_open_sla, tickets.inc_daily_snapshot TO {READER_ROLE}")
    conn.execute("REVOKE EXECUTE ON FUNCTION reporting.fn_tickets_for_map(boolean) FROM PUBLIC")
    conn.execute(f"GRANT EXECUTE ON FUNCTION reporting.fn_tickets_for_map(boolean) TO {READER_ROLE}")
