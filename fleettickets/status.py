"""Pipeline status: facts from the database and the bucket, and the health rules over them."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any

import psycopg
from psycopg import sql

from fleettickets import clock
from fleettickets.clock import EAT, eat_text
from fleettickets.db import LockHolder, connect, lock_holder
from fleettickets.errors import FleetTicketsError
from fleettickets.ledger import against_ledger
from fleettickets.migrate import pending_migrations
from fleettickets.s3 import make_s3_client
from fleettickets.settings import Settings
from fleettickets.source import ChangeFile, list_change_files

RECENT_RUNS = 5
# The tables each section reads; a section whose table is missing says "not installed".
OPTIONAL_TABLES = (
    "tickets.inc",
    "tickets.import_meta",
    "tickets.ingest_files",
    "tickets.ingest_runs",
    "tickets.geo_clusters",
    "tickets.geo_locations",
    "tickets.inc_daily_snapshot",
    "tickets.closure_events",
    "tickets.adoption",
)

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
        cls,
        settings: Settings,
        *,
        max_pending_minutes: int | None = None,
        max_silence_minutes: int | None = None,
        export_hours: str | None = None,
    ) -> Thresholds:
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
        return {
            "max_pending_minutes": self.max_pending_minutes,
            "max_silence_minutes": self.max_silence_minutes,
            "export_hours": f"{self.export_start:%H:%M}-{self.export_end:%H:%M} EAT",
        }


@dataclass(frozen=True)
class SchemaFacts:
    applied: int | None  # None: the migrations could not be read (see error)
    pending: tuple[str, ...]
    error: str | None


@dataclass(frozen=True)
class AppliedFile:
    file_key: str
    file_ts: datetime
    committed_at: datetime
    archived_at: datetime | None


@dataclass(frozen=True)
class Watermark:
    source_max_key: str | None
    source_max_ts: datetime | None
    last_ingest_at: datetime | None
    newest_applied: AppliedFile | None


@dataclass(frozen=True)
class Run:
    run_id: str
    started_at: datetime
    finished_at: datetime | None
    status: str  # running, succeeded, failed; "interrupted" for a killed run still marked running
    files_applied: int
    files_archived: int
    rows_changed: int
    seconds: float | None
    error: str | None


@dataclass(frozen=True)
class BucketFile:
    key: str
    file_ts: datetime
    since: datetime  # when it landed in the bucket (its name's time if the store does not say)


@dataclass(frozen=True)
class BucketFacts:
    error: str | None = None
    waiting: int = 0
    not_archived: int = 0
    conflicts: int = 0
    skipped: int = 0
    oldest: BucketFile | None = None  # by arrival
    newest: BucketFile | None = None  # by the timestamp in its name


@dataclass(frozen=True)
class TicketCounts:
    total: int
    open: int
    placed: dict[str, int]  # feed, location, cluster, none


@dataclass(frozen=True)
class GazetteerCount:
    rows: int
    with_coordinates: int


@dataclass(frozen=True)
class Freshness:
    newest_file_ts: datetime | None
    newest_file_age_minutes: int | None
    newest_source_updated_at: datetime | None
    content_lag_hours: float | None


@dataclass(frozen=True)
class Adoption:
    adopted_at: datetime
    watermark_key: str | None
    kept_days: int


@dataclass(frozen=True)
class HistoryFacts:
    installed: bool
    first_day: date | None = None
    last_day: date | None = None
    days: int | None = None
    closure_events: int | None = None  # None: no closure table yet
    adopted: Adoption | None = None  # only on a database taken over from the earlier loader

    def as_dict(self) -> dict[str, Any]:
        if not self.installed:
            return {"installed": False}
        found = asdict(self)
        for optional in ("closure_events", "adopted"):
            if found[optional] is None:
                del found[optional]
        return found


@dataclass(frozen=True)
class ReaderLogin:
    name: str
    statement_timeout: str | None


@dataclass(frozen=True)
class ReaderFacts:
    role: str
    exists: bool
    granted: bool = False
    statement_timeout: str | None = None
    logins: tuple[ReaderLogin, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) if self.exists else {"role": self.role, "exists": False}


@dataclass(frozen=True)
class Facts:
    """What `status` found, before any rule judged it."""

    now: datetime
    schema: SchemaFacts
    ingest_running: bool
    ingest_lock: LockHolder | None
    watermark: Watermark | None
    runs: tuple[Run, ...]  # newest first
    bucket: BucketFacts
    tickets: TicketCounts | None  # None: no tickets table yet
    gazetteer: dict[str, GazetteerCount | None]  # clusters, locations; None: not installed
    freshness: Freshness
    history: HistoryFacts
    dashboard_installed: bool
    reader: ReaderFacts

    def as_dict(self) -> dict[str, Any]:
        """Plain data, as `status --json` prints it."""
        return {
            "now": self.now,
            "schema": asdict(self.schema),
            "ingest_running": self.ingest_running,
            "ingest_lock": self.ingest_lock.as_dict() if self.ingest_lock else None,
            "watermark": asdict(self.watermark) if self.watermark else None,
            "runs": [asdict(run) for run in self.runs],
            "bucket": asdict(self.bucket),
            "tickets": asdict(self.tickets) if self.tickets else None,
            "gazetteer": {name: asdict(count) if count else None for name, count in self.gazetteer.items()},
            "freshness": asdict(self.freshness),
            "history": self.history.as_dict(),
            "dashboard": {"installed": self.dashboard_installed},
            "reader": self.reader.as_dict(),
        }


@dataclass(frozen=True)
class Status:
    facts: Facts
    thresholds: Thresholds
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems


def report(
    settings: Settings,
    *,
    now: datetime | None = None,
    max_pending_minutes: int | None = None,
    max_silence_minutes: int | None = None,
    export_hours: str | None = None,
) -> Status:
    """The `status` command: gather the facts and judge them."""
    thresholds = Thresholds.from_settings(
        settings,
        max_pending_minutes=max_pending_minutes,
        max_silence_minutes=max_silence_minutes,
        export_hours=export_hours,
    )
    facts = gather(settings, now=now)
    return Status(facts=facts, thresholds=thresholds, problems=check(facts, thresholds))


def gather(settings: Settings, *, now: datetime | None = None) -> Facts:
    """Everything an operator asks first; read-only, takes no lock."""
    now = (now or clock.now()).astimezone(EAT)
    with connect(settings, autocommit=True) as conn:
        present = _present_tables(conn)
        schema = _schema(conn)
        holder = lock_holder(conn, "ingest")
        watermark = _watermark(conn, present)
        return Facts(
            now=now,
            schema=schema,
            ingest_running=holder is not None,
            ingest_lock=holder,
            watermark=watermark,
            runs=_runs(conn, present, holder is not None),
            bucket=_bucket(conn, settings, present),
            tickets=_tickets(conn, present),
            gazetteer=_gazetteer(conn, present),
            freshness=_freshness(conn, present, watermark, now),
            history=_history(conn, present),
            dashboard_installed=bool(_one(conn, DASHBOARD_INSTALLED)),
            reader=read_reader_role(conn, READER_ROLE),
        )


def check(facts: Facts, thresholds: Thresholds) -> list[str]:
    """The reasons the pipeline is unhealthy; an empty list means healthy."""
    problems = []
    schema = facts.schema
    if schema.error:
        problems.append(f"schema: {schema.error}")
    elif schema.pending:
        problems.append(
            f"{len(schema.pending)} migration(s) pending (first {schema.pending[0]}); run `fleettickets migrate`"
        )
    last = facts.runs[0] if facts.runs else None
    if last and last.status == "failed":
        problems.append(
            f"last ingest run {last.run_id} ({eat_text(last.started_at)}) failed: "
            + first_line(last.error or "no error recorded")
        )
    elif last and last.status == "interrupted":
        problems.append(
            f"last ingest run {last.run_id} ({eat_text(last.started_at)}) never finished "
            "(killed or crashed); the next run resumes where it stopped"
        )
    bucket, now = facts.bucket, facts.now
    if bucket.error:
        problems.append(f"bucket: {bucket.error}")
    if bucket.conflicts:
        problems.append(
            f"{bucket.conflicts} file(s) in changes/ differ from the version already "
            "ingested under the same name (see docs/operations.md, a replaced file)"
        )
    oldest = bucket.oldest
    if oldest and _minutes(now - oldest.since) > thresholds.max_pending_minutes:
        problems.append(
            f"{bucket.waiting + bucket.not_archived} file(s) waiting in changes/, oldest "
            f"{oldest.key} for {_minutes(now - oldest.since)} min "
            f"(limit {thresholds.max_pending_minutes})"
        )
    silence = _silence(facts, thresholds)
    if silence is not None and silence > thresholds.max_silence_minutes:
        newest = _newest_arrival(facts)
        problems.append(
            f"no change file has arrived for {silence} min of export hours (newest "
            f"{eat_text(newest, missing='none yet')}; limit {thresholds.max_silence_minutes})"
        )
    return problems


def _silence(facts: Facts, thresholds: Thresholds) -> int | None:
    """Minutes of export hours since the newest file; None outside export hours."""
    now = facts.now
    if not thresholds.export_start <= now.timetz().replace(tzinfo=None) < thresholds.export_end:
        return None
    window_start = datetime.combine(now.date(), thresholds.export_start, tzinfo=EAT)
    newest = _newest_arrival(facts)
    return _minutes(now - max(newest or window_start, window_start))


def _newest_arrival(facts: Facts) -> datetime | None:
    """The newest change file seen, applied or still in the bucket, by its name's timestamp."""
    seen = [facts.freshness.newest_file_ts]
    if facts.bucket.newest:
        seen.append(facts.bucket.newest.file_ts)
    return max((ts for ts in seen if ts), default=None)


def _present_tables(conn: psycopg.Connection) -> set[str]:
    rows = conn.execute(
        "SELECT t FROM unnest(%s::text[]) t WHERE to_regclass(t) IS NOT NULL", (list(OPTIONAL_TABLES),)
    ).fetchall()
    return {r[0] for r in rows}


def _schema(conn: psycopg.Connection) -> SchemaFacts:
    try:
        plan = pending_migrations(conn)
    except FleetTicketsError as exc:
        return SchemaFacts(applied=None, pending=(), error=str(exc))
    return SchemaFacts(applied=len(plan.applied), pending=tuple(m.filename for m in plan.pending), error=None)


def _lock_held(conn: psycopg.Connection) -> bool:
    """Whether an ingest holds its advisory lock right now."""
    return lock_holder(conn, "ingest") is not None


def _watermark(conn: psycopg.Connection, present: set[str]) -> Watermark | None:
    meta = None
    if "tickets.import_meta" in present:
        meta = _one(conn, "SELECT metadata FROM tickets.import_meta WHERE dataset = 'inc'")
    newest = None
    if "tickets.ingest_files" in present:
        newest = _row(
            conn,
            "SELECT file_key, file_ts, committed_at, archived_at FROM tickets.ingest_files "
            "ORDER BY committed_at DESC, file_ts DESC LIMIT 1",
        )
    if meta is None and newest is None:
        return None
    meta = meta or {}
    return Watermark(
        source_max_key=meta.get("source_max_key"),
        source_max_ts=_parse_ts(meta.get("source_max_ts")),
        last_ingest_at=_parse_ts(meta.get("last_ingest_at")),
        newest_applied=AppliedFile(**newest) if newest else None,
    )


def _runs(conn: psycopg.Connection, present: set[str], lock_held: bool) -> tuple[Run, ...]:
    if "tickets.ingest_runs" not in present:
        return ()
    query = (
        "SELECT run_id, started_at, finished_at, status, files_applied, files_archived, rows_changed, "
        "round(extract(epoch FROM finished_at - started_at)::numeric, 1)::float AS seconds, error "
        "FROM tickets.ingest_runs ORDER BY started_at DESC LIMIT %s"
    )
    runs = []
    # A live run holds the ingest lock from before its row is written until after
    # its outcome is: with the lock held the newest 'running' row is that run, and
    # any other 'running' row belongs to a process that was killed.
    live_found = not lock_held
    for run in (Run(**row) for row in _rows(conn, query, (RECENT_RUNS,))):
        if run.status == "running":
            if not live_found:
                live_found = True
            elif lock_held or _still_running_unlocked(conn, run.run_id):
                run = replace(run, status="interrupted")
        runs.append(run)
    return tuple(runs)


def _still_running_unlocked(conn: psycopg.Connection, run_id: str) -> bool:
    """Re-read after the lock check, so a run that finished meanwhile is not called killed."""
    still = _one(conn, "SELECT status FROM tickets.ingest_runs WHERE run_id = %s", (run_id,))
    return bool(still == "running" and not _lock_held(conn))


def _bucket(conn: psycopg.Connection, settings: Settings, present: set[str]) -> BucketFacts:
    try:
        client = make_s3_client(settings, attempts=2)
        listing = list_change_files(client, settings.s3_bucket, settings.changes_prefix)
    except FleetTicketsError as exc:
        return BucketFacts(error=str(exc))
    if "tickets.ingest_files" in present:
        states = Counter(entry.state for entry in against_ledger(conn, listing.files))
    else:
        states = Counter({"new": len(listing.files)})
    oldest = newest = None
    if listing.files:
        # How long a file has waited counts from when it landed, not from its name:
        # a late file has an old name but has only just arrived.
        oldest = _file(min(listing.files, key=lambda f: f.last_modified or f.file_ts))
        newest = _file(max(listing.files, key=lambda f: f.file_ts))
    return BucketFacts(
        error=None,
        waiting=states["new"],
        not_archived=states["loaded"],
        conflicts=states["conflict"],
        skipped=len(listing.skipped),
        oldest=oldest,
        newest=newest,
    )


def _file(change: ChangeFile) -> BucketFile:
    return BucketFile(key=change.key, file_ts=change.file_ts, since=change.last_modified or change.file_ts)


def _tickets(conn: psycopg.Connection, present: set[str]) -> TicketCounts | None:
    if "tickets.inc" not in present:
        return None
    row = _row(
        conn,
        """
        SELECT count(*) AS total,
               count(*) FILTER (WHERE tickets.to_bool(raw ->> 'is_actionable')) AS open,
               jsonb_build_object(
                   'feed', count(*) FILTER (WHERE geo_source = 'feed'),
                   'location', count(*) FILTER (WHERE geo_source = 'location'),
                   'cluster', count(*) FILTER (WHERE geo_source = 'cluster'),
                   'none', count(*) FILTER (WHERE geo_source IS NULL)) AS placed
          FROM tickets.inc""",
    )
    return TicketCounts(**row) if row else None


def _gazetteer(conn: psycopg.Connection, present: set[str]) -> dict[str, GazetteerCount | None]:
    found: dict[str, GazetteerCount | None] = {}
    for name, table in (("clusters", "tickets.geo_clusters"), ("locations", "tickets.geo_locations")):
        row = None
        if table in present:
            row = _row(
                conn,
                sql.SQL("SELECT count(*) AS rows, count(geom) AS with_coordinates FROM {}").format(
                    sql.Identifier(*table.split("."))
                ),
            )
        found[name] = GazetteerCount(**row) if row else None
    return found


def _freshness(conn: psycopg.Connection, present: set[str], watermark: Watermark | None, now: datetime) -> Freshness:
    newest_file = watermark.source_max_ts if watermark else None
    if "tickets.ingest_files" in present:
        newest_file = _one(conn, "SELECT max(file_ts) FROM tickets.ingest_files") or newest_file
    content = None
    if "tickets.inc" in present:
        content = _one(conn, "SELECT max(source_updated_at) FROM tickets.inc")
    return Freshness(
        newest_file_ts=newest_file,
        newest_file_age_minutes=_minutes(now - newest_file) if newest_file else None,
        newest_source_updated_at=content,
        # The feed's content trails its file timestamps (the upstream export lags).
        content_lag_hours=round((newest_file - content).total_seconds() / 3600, 1) if newest_file and content else None,
    )


def _history(conn: psycopg.Connection, present: set[str]) -> HistoryFacts:
    # Absent only on a database whose migrations are behind (reported under schema).
    if "tickets.inc_daily_snapshot" not in present:
        return HistoryFacts(installed=False)
    days = (
        _row(
            conn,
            "SELECT min(snapshot_date) AS first_day, max(snapshot_date) AS last_day, "
            "count(*) AS days FROM tickets.inc_daily_snapshot",
        )
        or {}
    )
    closure_events = None
    if "tickets.closure_events" in present:
        closure_events = _one(conn, "SELECT count(*) FROM tickets.closure_events")
    adopted = (
        _row(
            conn,
            "SELECT adopted_at, watermark_key, (SELECT count(*) FROM tickets.history_kept_days) "
            "AS kept_days FROM tickets.adoption",
        )
        if "tickets.adoption" in present
        else None
    )
    return HistoryFacts(
        installed=True, **days, closure_events=closure_events, adopted=Adoption(**adopted) if adopted else None
    )


def read_reader_role(conn: psycopg.Connection, role: str) -> ReaderFacts:
    """Whether the reader role exists, is granted the entry points, and carries its timeout."""
    row = _row(conn, READER_SQL, (role,))
    if row is None:
        return ReaderFacts(role=role, exists=False)
    logins = tuple(ReaderLogin(**login) for login in _rows(conn, READER_LOGINS_SQL, (role,)))
    return ReaderFacts(
        role=role, exists=True, granted=bool(row["granted"]), statement_timeout=row["statement_timeout"], logins=logins
    )


def _one(conn: psycopg.Connection, query: Any, params: Any = None) -> Any:
    row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def _row(conn: psycopg.Connection, query: Any, params: Any = None) -> dict[str, Any] | None:
    rows = _rows(conn, query, params)
    return rows[0] if rows else None


def _rows(conn: psycopg.Connection, query: Any, params: Any = None) -> list[dict[str, Any]]:
    cursor = conn.execute(query, params)
    names = [c.name for c in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _clock(text: str) -> time:
    hours, minutes = (int(part) for part in text.split(":"))
    return time.max if hours == 24 else time(hours, minutes)


def _parse_ts(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)


def first_line(text: str, limit: int = 200) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"
