"""Ticket history: capture closures and daily backlog, rebuild them, read the past."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from fleettickets import clock
from fleettickets.db import connect, job_lock
from fleettickets.errors import FleetTicketsError
from fleettickets.load import FileResult, load_change_file, prepare_session
from fleettickets.logs import new_run_id
from fleettickets.migrate import require_current_schema
from fleettickets.s3 import make_s3_client
from fleettickets.settings import Settings
from fleettickets.source import ChangeFile, list_change_files, open_change_file

logger = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass
class HistoryCapture:
    """What one capture (or rebuild) did to closure_events and inc_daily_snapshot."""

    closures_added: int
    days_refreshed: int
    versions_seen: int
    seconds: float = 0.0

    def as_dict(self) -> dict[str, int | float]:
        return asdict(self)


@dataclass
class RebuildReport:
    applied: bool
    replayed: list[FileResult] = field(default_factory=list)
    capture: HistoryCapture | None = None
    versions_total: int = 0
    days_total: int = 0
    closures_total: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "replayed": [f.as_dict() for f in self.replayed],
            "capture": self.capture.as_dict() if self.capture else None,
            "versions_total": self.versions_total,
            "days_total": self.days_total,
            "closures_total": self.closures_total,
        }


def capture(conn: psycopg.Connection, now: datetime) -> HistoryCapture:
    """Run tickets.capture_history() as of `now`, in the caller's transaction (or autocommit)."""
    return _call(conn, "capture_history", now)


def rebuild(conn: psycopg.Connection, now: datetime) -> HistoryCapture:
    """Run tickets.rebuild_history(): closures and daily rows recomputed from the versions."""
    return _call(conn, "rebuild_history", now)


def _call(conn: psycopg.Connection, function: str, now: datetime) -> HistoryCapture:
    # Never the database's now(): the run decides the instant, so a run that
    # commits after EAT midnight still writes the day it started on.
    query = sql.SQL("SELECT * FROM tickets.{}(%s)").format(sql.Identifier(function))
    started = time.monotonic()
    row = conn.execute(query, (now,)).fetchone()
    assert row is not None
    return HistoryCapture(
        closures_added=row[0], days_refreshed=row[1], versions_seen=row[2], seconds=round(time.monotonic() - started, 3)
    )


def capture_history(settings: Settings, *, apply: bool, now: datetime | None = None) -> HistoryCapture:
    """The `capture-history` command: without `apply`, the same work rolled back."""
    at = now or clock.now()
    with connect(settings, autocommit=True) as conn:
        require_current_schema(conn)
        with conn.transaction(force_rollback=not apply):
            return _guarded(lambda: capture(conn, at))


def rebuild_history(
    settings: Settings, *, apply: bool, replay: bool = True, now: datetime | None = None
) -> RebuildReport:
    """The `history rebuild` command.

    With `replay`, change files in the bucket's processed/ folder that are
    older than the first file this database ingested (and not replayed
    before) are loaded first, oldest first, through the ingestion code, so
    their versions exist; the bucket is only read. Then closure_events and
    inc_daily_snapshot are recomputed from every version. Without `apply`,
    all of it runs in one transaction that is rolled back.
    """
    at = now or clock.now()
    report = RebuildReport(applied=apply)
    client = make_s3_client(settings) if replay else None
    with connect(settings, autocommit=True) as conn, job_lock(conn, "ingest"):
        require_current_schema(conn)
        prepare_session(conn)
        # Applying, each replayed file and then the rebuild commit on their
        # own, so an interrupted replay resumes where it stopped; a dry run is
        # all of it in one transaction that is rolled back.
        with nullcontext() if apply else conn.transaction(force_rollback=True):
            if client is not None:
                _replay(conn, client, settings, report, apply=apply)
            with conn.transaction():
                report.capture = _guarded(lambda: rebuild(conn, at))
            report.versions_total, report.days_total, report.closures_total = _totals(conn)
    return report


def _replay(conn: psycopg.Connection, client: Any, settings: Settings, report: RebuildReport, *, apply: bool) -> None:
    files = list_change_files(client, settings.s3_bucket, settings.processed_prefix).files
    pending = replay_candidates(conn, files, settings.changes_prefix)
    run_id = new_run_id()
    for change in pending:
        result = FileResult(
            file_key=change.key, file_ts=change.file_ts, etag=change.etag, size_bytes=change.size, late=True
        )
        with conn.transaction():
            stream = open_change_file(client, settings.s3_bucket, change)
            try:
                _guarded(partial(load_change_file, conn, stream, result, run_id))
            finally:
                stream.close()
        report.replayed.append(result)
        logger.info(
            "%s %s: %d versions, %d new tickets",
            "replayed" if apply else "would replay",
            change.key,
            result.versions,
            result.inserted,
            extra={"event": "replay", **result.as_dict()},
        )


def replay_candidates(conn: psycopg.Connection, files: list[ChangeFile], changes_prefix: str) -> list[ChangeFile]:
    """Files older than the first one ingested from changes/, not in the ledger yet.

    Matching on the file time, not the key: the ledger names a file by the
    changes/ key it was loaded from, the bucket now holds it under processed/.
    """
    row = conn.execute(
        "SELECT min(file_ts) FILTER (WHERE starts_with(file_key, %s)), array_agg(file_ts) FROM tickets.ingest_files",
        (changes_prefix,),
    ).fetchone()
    assert row is not None
    first, loaded = row[0], set(row[1] or [])
    return [f for f in files if (first is None or f.file_ts < first) and f.file_ts not in loaded]


def as_of(settings: Settings, at: datetime, ticket_id: str | None = None) -> list[dict[str, Any]]:
    """Every ticket (or one) as it stood at `at`: the newest version stamped at or before it."""
    with connect(settings) as conn:
        require_current_schema(conn)
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute("SELECT * FROM tickets.inc_as_of(%s, %s) ORDER BY ticket_id", (at, ticket_id))
            return cur.fetchall()


def _totals(conn: psycopg.Connection) -> tuple[int, int, int]:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM tickets.inc_versions), "
        "(SELECT count(*) FROM tickets.inc_daily_snapshot), "
        "(SELECT count(*) FROM tickets.closure_events)"
    ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def _guarded(work: Callable[[], _T]) -> _T:
    try:
        return work()
    except psycopg.Error as exc:
        raise FleetTicketsError(f"history: database error: {str(exc).strip()}") from None
