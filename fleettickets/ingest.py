"""The main job: apply every pending change file in order, one transaction each, then archive it."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import psycopg
import urllib3
from botocore.exceptions import BotoCoreError, ClientError

from fleettickets import clock
from fleettickets.clock import EAT
from fleettickets.db import DEFAULT_LOCK_WAIT_SECONDS, connect, job_lock
from fleettickets.errors import BadChangeFile, FleetTicketsError, UsageError
from fleettickets.faults import crash_point
from fleettickets.history import HistoryCapture, capture
from fleettickets.ledger import against_ledger
from fleettickets.load import FileResult, load_change_file, prepare_session
from fleettickets.logs import new_run_id, progress_reader
from fleettickets.migrate import require_current_schema
from fleettickets.s3 import make_s3_client
from fleettickets.settings import Settings
from fleettickets.source import (
    ChangeFile,
    archive_change_file,
    list_change_files,
    open_change_file,
    parse_file_ts,
)

logger = logging.getLogger(__name__)


@dataclass
class IngestReport:
    applied: bool
    run_id: str
    files: list[FileResult] = field(default_factory=list)
    archived: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    failed: str | None = None
    history: HistoryCapture | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.failed is None and not self.problems

    def totals(self) -> dict[str, int]:
        keys = (
            "rows_read",
            "inserted",
            "updated",
            "unchanged",
            "stale",
            "duplicates",
            "alarms_dropped",
            "sentinels_dropped",
            "rejected",
        )
        return {k: sum(getattr(f, k) for f in self.files) for k in keys}

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "applied": self.applied,
            "ok": self.ok,
            "files": [f.as_dict() for f in self.files],
            "totals": self.totals(),
            "archived": self.archived,
            "skipped": [{"key": k, "reason": r} for k, r in self.skipped],
            "problems": self.problems,
            "failed": self.failed,
            "history": self.history.as_dict() if self.history else None,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class _Plan:
    pending: list[ChangeFile]
    to_archive: list[ChangeFile]
    conflicts: list[str]


def run_ingest(
    settings: Settings,
    *,
    apply: bool,
    local_files: list[Path] | None = None,
    now: datetime | None = None,
    lock_wait: float = DEFAULT_LOCK_WAIT_SECONDS,
) -> IngestReport:
    """Apply (or, without `apply`, preview) every change file not yet ingested.

    With `local_files`, those files are ingested in the given order through
    the same code, and nothing is archived. A lock held by another run is
    waited for up to `lock_wait` seconds. `now` (default: the clock, read
    once) is the run's instant: its history capture is as of then, so a run
    that starts before EAT midnight and commits after it writes the day it
    started on.
    """
    started = time.monotonic()
    run_now = now or clock.now()
    if local_files:
        check_local_files(local_files)
    report = IngestReport(applied=apply, run_id=new_run_id())
    client = None if local_files else make_s3_client(settings)
    with connect(settings, autocommit=True) as conn, job_lock(conn, "ingest", wait_seconds=lock_wait):
        require_current_schema(conn)
        prepare_session(conn)
        if apply:
            _start_run(conn, report)
        try:
            if local_files:
                changes = [_local_change_file(settings, path) for path in local_files]
            else:
                listing = list_change_files(client, settings.s3_bucket, settings.changes_prefix)
                changes = listing.files
                report.skipped = listing.skipped
                for key, reason in listing.skipped:
                    logger.info("skipped %s: %s", key, reason, extra={"file": key})
            plan = _plan(conn, changes)
            report.problems += plan.conflicts
            opener = (
                _open_local if local_files else (lambda change: open_change_file(client, settings.s3_bucket, change))
            )
            if apply:
                try:
                    _apply(conn, plan, opener, report)
                finally:
                    # Files committed before a failure are archived all the same.
                    if client is not None:
                        _archive(conn, client, settings, plan.to_archive + _loaded(plan, report), report)
                # Every run, also with nothing new: today's row moves on, and a
                # capture missed by an earlier failed run is caught up here.
                with conn.transaction():
                    report.history = capture(conn, run_now)
            else:
                _preview(conn, plan, opener, report)
        except FleetTicketsError as exc:
            report.failed = str(exc)
            exc.report = report
            raise
        except psycopg.Error as exc:
            report.failed = f"database error: {str(exc).strip()}"
            failure = FleetTicketsError(report.failed)
            failure.report = report
            raise failure from None
        except BaseException as exc:
            # Anything unforeseen (or Ctrl-C) must not leave the run recorded as ok.
            report.failed = f"stopped by {type(exc).__name__}: {str(exc).strip()}"
            raise
        finally:
            report.seconds = time.monotonic() - started
            if apply and not conn.closed:
                _finish_run(conn, report)
            _log_run(report)
    return report


def _plan(conn: psycopg.Connection, changes: list[ChangeFile]) -> _Plan:
    pending, to_archive, conflicts = [], [], []
    for entry in against_ledger(conn, changes):
        change, loaded_etag = entry.change, entry.loaded_etag
        if entry.state == "new":
            pending.append(change)
        elif entry.state == "loaded":
            to_archive.append(change)  # committed earlier, archiving did not finish
        elif change.local_path is not None:
            conflicts.append(
                f"{change.local_path}: a file named {change.name} was ingested as ETag "
                f"{loaded_etag}, and this one holds other bytes (ETag {change.etag}); it was "
                "not applied. Compare the two; a correction needs a newer timestamped name"
            )
            logger.error(conflicts[-1], extra={"file": change.key})
        else:
            conflicts.append(
                f"{change.key} was ingested as ETag {loaded_etag} but the bucket now "
                f"holds ETag {change.etag}; it was not applied again. Compare the two "
                "versions, then move the object out of changes/"
            )
            logger.error(conflicts[-1], extra={"file": change.key})
    return _Plan(pending=pending, to_archive=to_archive, conflicts=conflicts)


def _watermark(conn: psycopg.Connection) -> Any:
    row = conn.execute("SELECT max(file_ts) FROM tickets.ingest_files").fetchone()
    return row[0] if row else None


def _apply(conn: psycopg.Connection, plan: _Plan, opener: Any, report: IngestReport) -> None:
    for change in plan.pending:
        result = _new_result(change, _watermark(conn))
        crash_point("before-file")
        with conn.transaction():
            _load_one(conn, opener, change, result, report.run_id)
            crash_point("before-commit")
        crash_point("after-commit")
        report.files.append(result)
        _log_file(result, applied=True)


def _preview(conn: psycopg.Connection, plan: _Plan, opener: Any, report: IngestReport) -> None:
    """A dry run is the real load inside one transaction that is always rolled back."""
    with conn.transaction(force_rollback=True):
        for change in plan.pending:
            result = _new_result(change, _watermark(conn))
            _load_one(conn, opener, change, result, report.run_id)
            report.files.append(result)
            _log_file(result, applied=False)
    for change in plan.to_archive:
        logger.info("would archive %s (loaded earlier)", change.key, extra={"file": change.key})


def _load_one(conn: psycopg.Connection, opener: Any, change: ChangeFile, result: FileResult, run_id: str) -> None:
    """Load one file; every way it can fail becomes one message naming the file."""
    local = change.local_path is not None
    name = str(change.local_path) if local else change.key
    try:
        with _opened(opener, change) as stream:
            load_change_file(conn, stream, result, run_id, source=name)
    except BadChangeFile as exc:
        raise FleetTicketsError(
            f"{exc}; nothing from this file was applied and "
            + (
                "the files after it were not loaded (correct the file, or leave it out of --inc-csv, and run again)"
                if local
                else "later files wait behind it (fix or move the object out of changes/, see docs/operations.md)"
            )
        ) from None
    except (BotoCoreError, ClientError, urllib3.exceptions.HTTPError, OSError) as exc:
        raise FleetTicketsError(
            f"{name}: reading it failed ({type(exc).__name__}: {exc}); nothing "
            "from this file was applied; " + ("run again once it can be read" if local else "the next run retries it")
        ) from None
    except psycopg.Error as exc:
        raise FleetTicketsError(
            f"{name}: the database refused it ({type(exc).__name__}: "
            f"{str(exc).strip()}); nothing from this file was applied and "
            + ("the files after it were not loaded" if local else "later files wait behind it")
        ) from None


def _loaded(plan: _Plan, report: IngestReport) -> list[ChangeFile]:
    done = {f.file_key for f in report.files}
    return [c for c in plan.pending if c.key in done]


def _archive(
    conn: psycopg.Connection,
    client: Any,
    settings: Settings,
    changes: list[ChangeFile],
    report: IngestReport,
) -> None:
    for change in changes:
        crash_point("before-archive")
        try:
            outcome = archive_change_file(client, settings.s3_bucket, change, settings.processed_prefix)
        except (FleetTicketsError, BotoCoreError, ClientError) as exc:
            # Committed but not archived: the ledger makes the next run archive it.
            report.problems.append(f"{change.key}: not archived yet: {exc}")
            logger.error("%s", exc, extra={"file": change.key})
            continue
        report.archived.append(change.key)
        conn.execute(
            "UPDATE tickets.ingest_files SET archived_at = now() WHERE file_key = %s",
            (change.key,),
        )
        logger.info("%s: %s", change.key, outcome, extra={"file": change.key, "archive": outcome})


def _new_result(change: ChangeFile, watermark: Any) -> FileResult:
    late = watermark is not None and change.file_ts < watermark
    if late:
        logger.warning(
            "%s is late: older than files already applied (newest %s); its rows only replace older versions",
            change.key,
            watermark.astimezone(EAT).isoformat(),
            extra={"file": change.key, "late": True},
        )
    return FileResult(file_key=change.key, file_ts=change.file_ts, etag=change.etag, size_bytes=change.size, late=late)


@contextmanager
def _opened(opener: Any, change: ChangeFile) -> Iterator[BinaryIO]:
    stream = progress_reader(opener(change), change.size, change.name)
    try:
        yield stream
    finally:
        stream.close()


def check_local_files(paths: list[Path]) -> None:
    """Refuse, before anything runs, local files that cannot be ingested as given.

    Two files with one name would be one ledger key (the name is the key, as
    in the bucket): the ledger could not say which bytes it holds. Anything
    but a regular file (a FIFO, a device) may block forever or read once only.
    """
    seen: dict[str, Path] = {}
    for path in paths:
        if not path.is_file():
            kind = "does not exist" if not path.exists() else "is not a regular file"
            raise UsageError(f"{path} {kind}; --inc-csv takes regular files only")
        if path.name in seen:
            same = (
                "is given twice"
                if seen[path.name].resolve() == path.resolve()
                else (f"has the same name as {seen[path.name]}")
            )
            raise UsageError(
                f"{path} {same}; a change file is recorded by its name, so each --inc-csv file needs a name of its own"
            )
        seen[path.name] = path


def _local_change_file(settings: Settings, path: Path) -> ChangeFile:
    file_ts = parse_file_ts(path.name)
    if file_ts is None:
        raise FleetTicketsError(
            f"{path}: a change file must be named <YYYY-MM-DDTHH-MM-SS>.csv (EAT), "
            "because its rows are ordered by that timestamp"
        )
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    try:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise FleetTicketsError(f"{path}: cannot read it: {exc.strerror}") from None
    # Keyed as if it were in the bucket, so the same file arriving there later
    # is recognised as already applied.
    return ChangeFile(
        key=settings.changes_prefix + path.name, file_ts=file_ts, etag=digest.hexdigest(), size=size, local_path=path
    )


def _open_local(change: ChangeFile) -> BinaryIO:
    assert change.local_path is not None
    return _VerifiedReader(change.local_path.open("rb"), change)  # type: ignore[return-value]


class _VerifiedReader:
    """A local file read for loading, checked at its end against the ETag and size planned.

    The ledger row records that ETag and size; a file rewritten between the
    two reads must not be recorded as bytes it no longer holds.
    """

    def __init__(self, handle: BinaryIO, change: ChangeFile) -> None:
        self._handle = handle
        self._change = change
        self._digest = hashlib.md5(usedforsecurity=False)
        self._size = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._handle.read(size)
        if chunk:
            self._digest.update(chunk)
            self._size += len(chunk)
        elif self._digest.hexdigest() != self._change.etag or self._size != self._change.size:
            raise BadChangeFile(
                str(self._change.local_path),
                "the file changed while it was being read (its ETag or size is not what it was when the run started)",
            )
        return chunk

    def close(self) -> None:
        self._handle.close()


def _log_file(result: FileResult, *, applied: bool) -> None:
    logger.info(
        "%s %s: %d new, %d changed, %d unchanged, %d stale, %d dropped, %d rejected",
        "applied" if applied else "would apply",
        result.file_key,
        result.inserted,
        result.updated,
        result.unchanged,
        result.stale,
        result.alarms_dropped + result.sentinels_dropped,
        result.rejected,
        extra={"event": "file", "file": result.file_key, "applied": applied, **result.as_dict()},
    )


def _log_run(report: IngestReport) -> None:
    """One closing event per run, so a log reader sees the outcome without adding up files."""
    totals = report.totals()
    outcome = "failed" if not report.ok else "finished" if report.applied else "dry run finished"
    logger.log(
        logging.INFO if report.ok else logging.ERROR,
        "ingest %s: %d files, %d new, %d changed, %d archived in %.1fs",
        outcome,
        len(report.files),
        totals["inserted"],
        totals["updated"],
        len(report.archived),
        report.seconds,
        extra={
            "event": "run",
            "applied": report.applied,
            "ok": report.ok,
            "files": len(report.files),
            "archived": len(report.archived),
            "problems": len(report.problems),
            "failed": report.failed,
            "seconds": round(report.seconds, 3),
            **totals,
        },
    )


def _start_run(conn: psycopg.Connection, report: IngestReport) -> None:
    conn.execute("INSERT INTO tickets.ingest_runs (run_id) VALUES (%s)", (report.run_id,))


def _finish_run(conn: psycopg.Connection, report: IngestReport) -> None:
    error = report.failed or ("; ".join(report.problems) if report.problems else None)
    try:
        conn.execute(
            "UPDATE tickets.ingest_runs SET finished_at = now(), status = %s, "
            "files_applied = %s, files_archived = %s, rows_changed = %s, error = %s "
            "WHERE run_id = %s",
            (
                "ok" if report.ok else "failed",
                len(report.files),
                len(report.archived),
                sum(f.inserted + f.updated for f in report.files),
                error,
                report.run_id,
            ),
        )
    except psycopg.Error as exc:
        # The run's own outcome matters more than its bookkeeping: report, don't mask.
        logger.error("could not record the run's outcome: %s", str(exc).strip())
