"""Pipeline status: facts from the database and the bucket, and the health rules over them."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from typing import Any

import psycopg
from psycopg import sql

from fleettickets import clock
from fleettickets.clock import EAT
from fleettickets.db import connect, lock_holder
from fleettickets.errors import FleetTicketsError
from fleettickets.migrate import pending_migrations
from fleettickets.s3 import make_s3_client
from fleettickets.settings import Settings
from fleettickets.source import list_change_files

logger = logging.getLogger(__name__)

RECENT_RUNS = 5
# The tables each section reads; a section whose table is missing says "not installed".
OPTIONAL_TABLES = ("tickets.inc", "tickets.import_meta", "tickets.ingest_files",
                   "tickets.ingest_runs", "tickets.geo_clusters", "tickets.geo_locations",
                   "tickets.inc_daily_snapshot", "tickets.closure_events")  # fmt: skip

# The least-privilege role the dashboard API and other readers log in through (migration 24).
READER_ROLE = "fleettickets_reader"
READER_SQL = """
SELECT (SELECT option_value FROM pg_options_to_table(r.rolconfig)
         WHERE option_name = 'statement_timeout') AS statement_timeout,
       has_function_privilege(r.oid, p.oid, 'EXECUTE') AS granted
  FROM pg_roles r
  LEFT JOIN (SELECT to_regprocedure('reporting.fn_dispatch_candidates(float8, float8, int, int, text, text, '
                                    'text, timestamptz)') AS oid) p ON p.oid IS NOT NULL
 WHERE r.rolname = %s
"""
READER_LOGINS_SQL = """
SELECT m.rolname AS name,
       (SELECT option_value FROM pg_options_to_table(m.rolconfig)
         WHERE option_name = 'statement_timeout') AS statement_timeout
  FROM pg_auth_members a
  JOIN pg_roles r ON r.oid = a.roleid
  JOIN pg_roles m ON m.oid = a.member
 WHERE r.rolname = %s AND m.rolcanlogin
 ORDER BY m.rolname
"""

DASHBOARD_INSTALLED = """
SELECT EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = 'reporting' AND p.proname = 'fn_inc_dashboard')
"""


@dataclass(frozen=True)
class Thresholds:
    max_pending_minutes: int
    max_silence_minutes: int
    export_start: time
    export_end: time

    @classmethod
    def from_settings(
        cls, settings: Settings, *, max_pending_minutes: int | None = None,
        max_silence_minutes: int | None = None, export_hours: str | None = None,
    ) -> Thresholds:  # fmt: skip
        """The settings' thresholds, with any command-line values taking precedence."""
        if export_hours is not None:
            settings = replace(settings, export_hours=export_hours)
            settings.validate()
        start, end = settings.export_hours.split("-")
        return cls(
            max_pending_minutes=max_pending_minutes or settings.status_max_pending_minutes,
            max_silence_minutes=max_silence_minutes or settings.status_max_silence_minutes,
            export_start=_clock(start),
            export_end=_clock(end),
        )

    def as_dict(self) -> dict[str, Any]:
        return {"max_pending_minutes": self.max_pending_minutes,
                "max_silence_minutes": self.max_silence_minutes,
                "export_hours": f"{self.export_start:%H:%M}-{self.export_end:%H:%M} EAT"}  # fmt: skip


@dataclass
class Status:
    facts: dict[str, Any]
    thresholds: Thresholds
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems


def report(
    settings: Settings, *, now: datetime | None = None, max_pending_minutes: int | None = None,
    max_silence_minutes: int | None = None, export_hours: str | None = None,
) -> Status:  # fmt: skip
    """The `status` command: gather the facts and judge them."""
    thresholds = Thresholds.from_settings(
        settings, max_pending_minutes=max_pending_minutes,
        max_silence_minutes=max_silence_minutes, export_hours=export_hours,
    )  # fmt: skip
    facts = gather(settings, now=now)
    return Status(facts=facts, thresholds=thresholds, problems=check(facts, thresholds))


def gather(settings: Settings, *, now: datetime | None = None) -> dict[str, Any]:
    """Everything an operator asks first, as plain data; read-only, takes no lock."""
    now = (now or clock.now()).astimezone(EAT)
    with connect(settings, autocommit=True) as conn:
        present = _present_tables(conn)
        facts: dict[str, Any] = {"now": now, "schema": _schema(conn)}
        holder = lock_holder(conn, "ingest")
        facts["ingest_running"] = holder is not None
        facts["ingest_lock"] = holder.as_dict() if holder else None
        facts["watermark"] = _watermark(conn, present)
        facts["runs"] = _runs(conn, present, facts["ingest_running"])
        facts["bucket"] = _bucket(conn, settings, present)
        facts["tickets"] = _tickets(conn, present)
        facts["gazetteer"] = _gazetteer(conn, present)
        facts["freshness"] = _freshness(conn, present, facts["watermark"], now)
        facts["history"] = _history(conn, present)
        facts["dashboard"] = {"installed": _one(conn, DASHBOARD_INSTALLED)}
        facts["reader"] = _reader(conn, READER_ROLE)
    return facts


def check(facts: dict[str, Any], thresholds: Thresholds) -> list[str]:
    """The reasons the pipeline is unhealthy; an empty list means healthy."""
    problems = []
    schema = facts["schema"]
    if schema["error"]:
        problems.append(f"schema: {schema['error']}")
    elif schema["pending"]:
        problems.append(f"{len(schema['pending'])} migration(s) pending (first {schema['pending'][0]}); "
                        "run `fleettickets migrate`")  # fmt: skip
    last = facts["runs"][0] if facts["runs"] else None
    if last and last["status"] == "failed":
        problems.append(f"last ingest run {last['run_id']} ({eat_text(last['started_at'])}) failed: "
                        + first_line(last["error"] or "no error recorded"))  # fmt: skip
    elif last and last["status"] == "interrupted":
        problems.append(f"last ingest run {last['run_id']} ({eat_text(last['started_at'])}) never finished "
                        "(killed or crashed); the next run resumes where it stopped")  # fmt: skip
    bucket, now = facts["bucket"], facts["now"]
    if bucket["error"]:
        problems.append(f"bucket: {bucket['error']}")
    if bucket.get("conflicts"):
        problems.append(f"{bucket['conflicts']} file(s) in changes/ differ from the version already "
                        "ingested under the same name (see docs/operations.md, a replaced file)")  # fmt: skip
    oldest = bucket.get("oldest")
    if oldest and _minutes(now - oldest["since"]) > thresholds.max_pending_minutes:
        problems.append(f"{bucket['waiting'] + bucket['not_archived']} file(s) waiting in changes/, oldest "
                        f"{oldest['key']} for {_minutes(now - oldest['since'])} min "
                        f"(limit {thresholds.max_pending_minutes})")  # fmt: skip
    silence = _silence(facts, thresholds)
    if silence is not None and silence > thresholds.max_silence_minutes:
        newest = _newest_arrival(facts)
        problems.append(f"no change file has arrived for {silence} min of export hours (newest "
                        f"{eat_text(newest) if newest else 'none yet'}; limit {thresholds.max_silence_minutes})")  # fmt: skip
    return problems


def _silence(facts: dict[str, Any], thresholds: Thresholds) -> int | None:
    """Minutes of export hours since the newest file; None outside export hours."""
    now = facts["now"]
    if not thresholds.export_start <= now.timetz().replace(tzinfo=None) < thresholds.export_end:
        return None
    window_start = datetime.combine(now.date(), thresholds.export_start, tzinfo=EAT)
    newest = _newest_arrival(facts)
    return _minutes(now - max(newest or window_start, window_start))


def _newest_arrival(facts: dict[str, Any]) -> datetime | None:
    """The newest change file seen, applied or still in the bucket, by its name's timestamp."""
    seen = [facts["freshness"]["newest_file_ts"]]
    if facts["bucket"].get("newest"):
        seen.append(facts["bucket"]["newest"]["file_ts"])
    return max((ts for ts in seen if ts), default=None)


def _present_tables(conn: psycopg.Connection) -> set[str]:
    rows = conn.execute("SELECT t FROM unnest(%s::text[]) t WHERE to_regclass(t) IS NOT NULL",
                        (list(OPTIONAL_TABLES),)).fetchall()  # fmt: skip
    return {r[0] for r in rows}


def _schema(conn: psycopg.Connection) -> dict[str, Any]:
    try:
        plan = pending_migrations(conn)
    except FleetTicketsError as exc:
        return {"applied": None, "pending": [], "error": str(exc)}
    return {"applied": len(plan.applied), "pending": [m.filename for m in plan.pending], "error": None}


def _lock_held(conn: psycopg.Connection) -> bool:
    """Whether an ingest holds its advisory lock right now."""
    return lock_holder(conn, "ingest") is not None


def _watermark(conn: psycopg.Connection, present: set[str]) -> dict[str, Any] | None:
    meta = None
    if "tickets.import_meta" in present:
        meta = _one(conn, "SELECT metadata FROM tickets.import_meta WHERE dataset = 'inc'")
    newest = None
    if "tickets.ingest_files" in present:
        newest = _row(conn, "SELECT file_key, file_ts, committed_at, archived_at FROM tickets.ingest_files "
                            "ORDER BY committed_at DESC, file_ts DESC LIMIT 1")  # fmt: skip
    if meta is None and newest is None:
        return None
    meta = meta or {}
    return {
        "source_max_key": meta.get("source_max_key"),
        "source_max_ts": _parse_ts(meta.get("source_max_ts")),
        "last_ingest_at": _parse_ts(meta.get("last_ingest_at")),
        "newest_applied": newest,
    }


def _runs(conn: psycopg.Connection, present: set[str], lock_held: bool) -> list[dict[str, Any]]:
    if "tickets.ingest_runs" not in present:
        return []
    query = ("SELECT run_id, started_at, finished_at, status, files_applied, files_archived, rows_changed, "
             "round(extract(epoch FROM finished_at - started_at)::numeric, 1)::float AS seconds, error "
             "FROM tickets.ingest_runs ORDER BY started_at DESC LIMIT %s")  # fmt: skip
    runs = _rows(conn, query, (RECENT_RUNS,))
    # A live run holds the ingest lock from before its row is written until after
    # its outcome is: with the lock held the newest 'running' row is that run, and
    # any other 'running' row belongs to a process that was killed.
    live_found = not lock_held
    for run in runs:
        if run["status"] != "running":
            continue
        if not live_found:
            live_found = True
        elif lock_held or _still_running_unlocked(conn, run["run_id"]):
            run["status"] = "interrupted"
    return runs


def _still_running_unlocked(conn: psycopg.Connection, run_id: str) -> bool:
    """Re-read after the lock check, so a run that finished meanwhile is not called killed."""
    still = _one(conn, "SELECT status FROM tickets.ingest_runs WHERE run_id = %s", (run_id,))
    return still == "running" and not _lock_held(conn)


def _bucket(conn: psycopg.Connection, settings: Settings, present: set[str]) -> dict[str, Any]:
    facts: dict[str, Any] = {"error": None, "waiting": 0, "not_archived": 0, "conflicts": 0,
                             "skipped": 0, "oldest": None, "newest": None}  # fmt: skip
    try:
        client = make_s3_client(settings, attempts=2)
        listing = list_change_files(client, settings.s3_bucket, settings.changes_prefix)
    except FleetTicketsError as exc:
        facts["error"] = str(exc)
        return facts
    ledger: dict[str, str] = {}
    if "tickets.ingest_files" in present and listing.files:
        ledger = dict(conn.execute("SELECT file_key, etag FROM tickets.ingest_files WHERE file_key = ANY(%s)",
                                   ([f.key for f in listing.files],)).fetchall())  # fmt: skip
    for change in listing.files:
        loaded = ledger.get(change.key)
        kind = "waiting" if loaded is None else "not_archived" if loaded == change.etag else "conflicts"
        facts[kind] += 1
    facts["skipped"] = len(listing.skipped)
    if listing.files:
        # How long a file has waited counts from when it landed, not from its name:
        # a late file has an old name but has only just arrived.
        arrivals = sorted(listing.files, key=lambda f: f.last_modified or f.file_ts)
        facts["oldest"] = _file(arrivals[0])
        facts["newest"] = _file(max(listing.files, key=lambda f: f.file_ts))
    return facts


def _file(change: Any) -> dict[str, Any]:
    return {"key": change.key, "file_ts": change.file_ts, "since": change.last_modified or change.file_ts}


def _tickets(conn: psycopg.Connection, present: set[str]) -> dict[str, Any] | None:
    if "tickets.inc" not in present:
        return None
    return _row(conn, """
        SELECT count(*) AS total,
               count(*) FILTER (WHERE tickets.to_bool(raw ->> 'is_actionable')) AS open,
               jsonb_build_object(
                   'feed', count(*) FILTER (WHERE geo_source = 'feed'),
                   'location', count(*) FILTER (WHERE geo_source = 'location'),
                   'cluster', count(*) FILTER (WHERE geo_source = 'cluster'),
                   'none', count(*) FILTER (WHERE geo_source IS NULL)) AS placed
          FROM tickets.inc""")


def _gazetteer(conn: psycopg.Connection, present: set[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, table in (("clusters", "tickets.geo_clusters"), ("locations", "tickets.geo_locations")):
        if table in present:
            found[name] = _row(conn, sql.SQL("SELECT count(*) AS rows, count(geom) AS with_coordinates FROM {}")
                               .format(sql.Identifier(*table.split("."))))  # fmt: skip
        else:
            found[name] = None
    return found


def _freshness(
    conn: psycopg.Connection, present: set[str], watermark: dict[str, Any] | None, now: datetime
) -> dict[str, Any]:
    newest_file = watermark["source_max_ts"] if watermark else None
    if "tickets.ingest_files" in present:
        newest_file = _one(conn, "SELECT max(file_ts) FROM tickets.ingest_files") or newest_file
    content = None
    if "tickets.inc" in present:
        content = _one(conn, "SELECT max(source_updated_at) FROM tickets.inc")
    return {
        "newest_file_ts": newest_file,
        "newest_file_age_minutes": _minutes(now - newest_file) if newest_file else None,
        "newest_source_updated_at": content,
        # The feed's content trails its file timestamps (the upstream export lags).
        "content_lag_hours": round((newest_file - content).total_seconds() / 3600, 1)
        if newest_file and content else None,
    }


def _history(conn: psycopg.Connection, present: set[str]) -> dict[str, Any]:
    # Absent only on a database whose migrations are behind (reported under schema).
    if "tickets.inc_daily_snapshot" not in present:
        return {"installed": False}
    facts: dict[str, Any] = {"installed": True}
    facts.update(_row(conn, "SELECT min(snapshot_date) AS first_day, max(snapshot_date) AS last_day, "
                            "count(*) AS days FROM tickets.inc_daily_snapshot") or {})  # fmt: skip
    if "tickets.closure_events" in present:
        facts["closure_events"] = _one(conn, "SELECT count(*) FROM tickets.closure_events")
    return facts


def _reader(conn: psycopg.Connection, role: str) -> dict[str, Any]:
    """Whether the reader role exists, is granted the entry points, and carries its timeout."""
    row = _row(conn, READER_SQL, (role,))
    if row is None:
        return {"role": role, "exists": False}
    return {"role": role, "exists": True, "granted": bool(row["granted"]),
            "statement_timeout": row["statement_timeout"],
            "logins": _rows(conn, READER_LOGINS_SQL, (role,))}  # fmt: skip


def _one(conn: psycopg.Connection, query: Any, params: Any = None) -> Any:
    row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def _row(conn: psycopg.Connection, query: Any, params: Any = None) -> dict[str, Any] | None:
    rows = _rows(conn, query, params)
    return rows[0] if rows else None


def _rows(conn: psycopg.Connection, query: Any, params: Any = None) -> list[dict[str, Any]]:
    cursor = conn.execute(query, params)
    names = [c.name for c in cursor.description or []]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _clock(text: str) -> time:
    hours, minutes = (int(part) for part in text.split(":"))
    return time.max if hours == 24 else time(hours, minutes)


def _parse_ts(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)


def eat_text(moment: datetime | None) -> str:
    """A moment as operators in Nairobi read it."""
    return moment.astimezone(EAT).strftime("%Y-%m-%d %H:%M EAT") if moment else "-"


def first_line(text: str, limit: int = 200) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"
