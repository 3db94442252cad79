"""Taking over a database the earlier loader set up: recognise it, plan, convert in one transaction.

The deployed schemas are renamed aside, the current schema is built by the
migrations in their place, what has value is copied across (raw rows,
gazetteers, aliases, watermark, captured history, grants), tables not
recognised are moved over whole, and the old schemas are dropped. All of it
is one transaction: killed at any point, the database is as it was.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from fleettickets import adopt_copy
from fleettickets.db import connect, job_lock
from fleettickets.errors import AdoptRefused, FleetTicketsError
from fleettickets.faults import crash_point
from fleettickets.migrate import (
    LEDGER_DDL,
    apply_one,
    default_migrations_dir,
    read_migrations,
)
from fleettickets.settings import Settings
from fleettickets.source import parse_file_ts

logger = logging.getLogger(__name__)

DEPLOYED_LEDGER_FILES = (
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
)
# The deployed objects as its documentation names them (kind, name, columns it must have).
DOCUMENTED = (
    ("table", "tickets.inc", ("ticket_id", "raw")),
    ("table", "tickets.crq", ("ticket_id", "raw")),
    ("table", "tickets.geo_clusters", ("cluster_key", "cluster", "verified")),
    ("table", "tickets.geo_locations", ("location_key", "location_name", "verified")),
    ("table", "tickets.import_meta", ("dataset", "metadata")),
    ("table", "tickets.closure_events", ("ticket_id", "observed_at")),
    ("table", "tickets.inc_daily_snapshot", ("snapshot_date", "open_total", "open_breached", "closed_today")),
    ("view", "tickets.inc_open_sla", ()),
    ("function", "reporting.fn_tickets_for_map", ()),
    ("function", "reporting.fn_inc_dashboard", ()),
)
# Deployed functions the current schema replaces under another name.
DOCUMENTED_OLD_FUNCTIONS = {"tickets.capture_history"}
ASIDE = {"tickets": "tickets_deployed", "reporting": "reporting_deployed"}
SQL_DIR = "adopt"


@dataclass
class AdoptReport:
    applied: bool
    backup_command: str
    state: str  # "deployed", "adopted", "fresh"
    lines: list[tuple[str, str]] = field(default_factory=list)

    def add(self, section: str, text: str) -> None:
        self.lines.append((section, text))


def backup_command(settings: Settings) -> str:
    """The pg_dump that saves both schemas first; the URL stays in the variable, never printed."""
    dbname = urlsplit(settings.database_url or "").path.lstrip("/") or "database"
    return (
        f'pg_dump "$DATABASE_URL" --format=custom --schema=tickets --schema=reporting '
        f"--file={dbname}-tickets-reporting-before-adopt.dump"
    )


def adopt(settings: Settings, *, apply: bool) -> AdoptReport:
    """The `adopt` command: without `apply`, the whole conversion runs and is rolled back."""
    report = AdoptReport(applied=apply, backup_command=backup_command(settings), state="deployed")
    with connect(settings, autocommit=True) as conn, job_lock(conn, "ingest"), job_lock(conn, "migrate", wait=True):
        report.state = recognise(conn)
        if report.state == "deployed":
            try:
                with conn.transaction(force_rollback=not apply):
                    # Readers queue behind the old schemas' drop: never for long.
                    conn.execute("SET LOCAL lock_timeout = '30s'")
                    convert(conn, report, apply=apply)
                    crash_point("adopt-before-commit")
            except psycopg.Error as exc:
                raise FleetTicketsError(
                    f"adopt failed and was rolled back, nothing changed: {type(exc).__name__}: {str(exc).strip()}"
                ) from None
            crash_point("adopt-after-commit")
            logger.info(
                "adopt %s: %d plan lines",
                "applied" if apply else "dry run rolled back",
                len(report.lines),
                extra={"event": "adopt", "applied": apply},
            )
    return report


def recognise(conn: psycopg.Connection) -> str:
    """'fresh', 'adopted' (this program's ledger) or 'deployed'; anything else is refused."""
    if _relation_kind(conn, "tickets.schema_migrations") is None:
        if not _objects_in(conn, ("tickets", "reporting")):
            return "fresh"
        raise AdoptRefused(
            ["the tickets or reporting schema holds objects but there is no ledger tickets.schema_migrations"]
        )
    if "checksum" in _columns(conn, "tickets.schema_migrations"):
        return "adopted"
    problems = _ledger_problems(conn) + _documented_problems(conn)
    for schema in ASIDE.values():
        if _schema_exists(conn, schema):
            problems.append(f"schema {schema} exists (adopt needs that name for a moment)")
    if not problems:
        _, watermark_problem = watermark(conn, "tickets")
        problems += [watermark_problem] if watermark_problem else []
    if problems:
        raise AdoptRefused(problems)
    return "deployed"


def convert(conn: psycopg.Connection, report: AdoptReport, *, apply: bool = True) -> None:
    """Everything, in the caller's transaction; a dry run leaves the old schemas' drop out.

    The drop locks every deployed table exclusively, which a rehearsal that is
    rolled back anyway has no need to make the map's readers wait for.
    """
    ledger = [r[0] for r in conn.execute("SELECT to_jsonb(l) FROM tickets.schema_migrations l")]
    report.add(
        "recognised",
        f"the earlier loader's database (tickets.schema_migrations: {len(ledger)} "
        f"files, {DEPLOYED_LEDGER_FILES[0]} to {DEPLOYED_LEDGER_FILES[-1]})",
    )
    crash_point("adopt-start")
    for schema, aside in ASIDE.items():
        if _schema_exists(conn, schema):
            conn.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(sql.Identifier(schema), sql.Identifier(aside)))
    conn.execute(LEDGER_DDL)
    migrations = read_migrations(default_migrations_dir())
    for migration in migrations:
        apply_one(conn, migration)
    report.add(
        "added",
        f"the current schema: {len(migrations)} migrations, {migrations[0].filename} to "
        f"{migrations[-1].filename}, recorded in tickets.schema_migrations",
    )
    crash_point("adopt-migrated")
    copier = adopt_copy.Copier(conn, report, ASIDE)
    copier.refuse_unknown_definitions(DOCUMENTED_OLD_FUNCTIONS)
    key, _ = watermark(conn, ASIDE["tickets"])
    assert key is not None
    file_ts = parse_file_ts(key.rsplit("/", 1)[-1])
    conn.execute(
        "CREATE TEMP TABLE adopt_watermark ON COMMIT DROP AS SELECT %s::text AS watermark_key, "
        "%s::timestamptz AS watermark_ts, %s::jsonb AS deployed_ledger",
        (key, file_ts, Jsonb(ledger)),
    )
    copier.copy_all()
    report.add(
        "kept as is",
        f"the watermark {key}: adopted tickets stand at that file; processed/ is not "
        "applied again, changes/ is applied next and wins over them",
    )
    conn.execute(_finish_sql())
    copier.report_history(key, file_ts)
    crash_point("adopt-copied")
    copier.copy_grants()
    copier.drop_deployed(apply=apply)
    conn.execute("UPDATE tickets.adoption SET plan = %s", (Jsonb([list(line) for line in report.lines]),))
    conn.execute("DROP TABLE adopt_watermark")


def watermark(conn: psycopg.Connection, schema: str) -> tuple[str | None, str | None]:
    """The last change file the deployed loader applied, or why it cannot be read."""
    query = sql.SQL(
        "SELECT metadata ->> 'source_max_key' FROM {}.import_meta "
        "WHERE metadata ? 'source_max_key' ORDER BY dataset = 'inc' DESC LIMIT 1"
    )
    row = conn.execute(query.format(sql.Identifier(schema))).fetchone()
    key = row[0] if row else None
    if not key or parse_file_ts(key.rsplit("/", 1)[-1]) is None:
        return None, (
            f"tickets.import_meta has no readable watermark (metadata ->> 'source_max_key' is "
            f"{key!r}); without it the files in processed/ would be applied again"
        )
    return key, None


def _finish_sql() -> str:
    return (default_migrations_dir() / SQL_DIR / "finish.sql").read_text(encoding="utf-8")


def _ledger_problems(conn: psycopg.Connection) -> list[str]:
    names: set[str] = set()
    for (row,) in conn.execute("SELECT to_jsonb(l) FROM tickets.schema_migrations l"):
        names |= {_ledger_name(v) for v in row.values() if isinstance(v, str) and re.match(r"^\d{2,4}_", v)}
    problems = [f"tickets.schema_migrations does not record {f}" for f in DEPLOYED_LEDGER_FILES if f not in names]
    problems += [
        f"tickets.schema_migrations records {f}, which the earlier loader's documentation does not list"
        for f in sorted(names - set(DEPLOYED_LEDGER_FILES))
    ]
    return problems


def _ledger_name(value: str) -> str:
    return value if value.endswith(".sql") else value + ".sql"


def _documented_problems(conn: psycopg.Connection) -> list[str]:
    problems = []
    for kind, name, columns in DOCUMENTED:
        schema, _, bare = name.partition(".")
        if kind == "function":
            row = conn.execute(
                "SELECT EXISTS (SELECT FROM pg_proc WHERE proname = %s AND pronamespace = %s::regnamespace)",
                (bare, schema),
            ).fetchone()
            if not (row and row[0]):
                problems.append(f"function {name} is missing")
            continue
        found = _relation_kind(conn, name)
        if found != kind:
            problems.append(f"{kind} {name} is missing" if found is None else f"{name} is a {found}, not a {kind}")
            continue
        missing = [c for c in columns if c not in _columns(conn, name)]
        if missing:
            problems.append(f"{name} has no column {', '.join(missing)}")
    return problems


def _relation_kind(conn: psycopg.Connection, name: str) -> str | None:
    row = conn.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", (name,)).fetchone()
    kinds = {"r": "table", "p": "table", "v": "view", "m": "materialized view", "S": "sequence"}
    return kinds.get(row[0], "relation") if row else None


def _columns(conn: psycopg.Connection, name: str) -> list[str]:
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) "
        "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        (name,),
    )
    return [r[0] for r in rows]


def _schema_exists(conn: psycopg.Connection, schema: str) -> bool:
    row = conn.execute("SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = %s)", (schema,)).fetchone()
    return bool(row and row[0])


def _objects_in(conn: psycopg.Connection, schemas: tuple[str, ...]) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = ANY(%s)) OR EXISTS (SELECT FROM pg_proc p JOIN pg_namespace n "
        "ON n.oid = p.pronamespace WHERE n.nspname = ANY(%s))",
        (list(schemas), list(schemas)),
    ).fetchone()
    return bool(row and row[0])
