"""Database connections and the advisory locks that keep one runner per job."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from fleettickets import defaults
from fleettickets.clock import eat_text
from fleettickets.errors import ConfigError, FleetTicketsError, LockBusy
from fleettickets.logs import redact
from fleettickets.settings import Settings

logger = logging.getLogger(__name__)

APPLICATION_NAME = "fleettickets"
# libpq's words for a connection option it cannot use, as opposed to a server it cannot reach.
_BAD_OPTION = re.compile(r"invalid (?:\w+ )*(?:value|number|option)|unrecognized|missing \"=\"")

# Neither side of a connection may wait on a dead peer for long; the reasons
# and the resulting times are in docs/operations.md ("Dead runs and dead peers").
# Server side, set on every session through libpq's `options`:
SESSION_SETTINGS = {
    # While a statement runs, look every 2 s whether the client is still there,
    # so a killed run's statement is cancelled and its lock freed within
    # seconds instead of when a merge of minutes would have ended.
    "client_connection_check_interval": "2s",
    # A client host that went silent (crashed, partitioned) answers neither
    # keepalives nor retransmissions: after about a minute the session ends.
    "tcp_keepalives_idle": "30s",
    "tcp_keepalives_interval": "10s",
    "tcp_keepalives_count": "3",
    "tcp_user_timeout": "60s",
    # A live client stuck inside a transaction. Nothing a healthy run does
    # between two statements comes near this: the longest gap is opening an S3
    # object, which the client's timeouts and retries bound at about 6 minutes.
    "idle_in_transaction_session_timeout": "10min",
}
# Client side (libpq keywords): a database that went silent fails the run in
# about a minute instead of leaving it on a socket for the kernel's hours.
CLIENT_KEYWORDS = {
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
    "tcp_user_timeout": "60000",
}
# A run that finds its job's lock taken waits this long before giving up: far
# more than the server needs to abandon a killed run (docs/operations.md).
DEFAULT_LOCK_WAIT_SECONDS = defaults.DEFAULT_LOCK_WAIT_SECONDS
LOCK_POLL_SECONDS = 0.5


def connect(settings: Settings, *, autocommit: bool = False) -> psycopg.Connection:
    """Open a connection, turning connection failures into a message without the password."""
    settings.require("database_url")
    assert settings.database_url is not None
    try:
        return psycopg.connect(autocommit=autocommit, **connection_params(settings.database_url))
    except psycopg.OperationalError as exc:
        message = redact(str(exc).strip(), settings.secrets())
        if "client_connection_check_interval" in message:
            message += (
                " (fleettickets needs PostgreSQL 14 or newer on Linux: it sets "
                "client_connection_check_interval on its sessions)"
            )
        if _BAD_OPTION.search(message):
            # libpq read the URL but refused a value in it: the setting is wrong.
            raise ConfigError(f"DATABASE_URL is not a valid connection string: {message}") from None
        raise FleetTicketsError(f"cannot connect to the database in DATABASE_URL: {message}") from None
    except psycopg.ProgrammingError as exc:
        raise ConfigError(
            "DATABASE_URL is not a valid connection string: " + redact(str(exc).strip(), settings.secrets())
        ) from None


def connection_params(database_url: str) -> dict[str, Any]:
    """The URL's parameters plus ours: a keyword the URL sets wins, and its own
    `options` (or PGOPTIONS) come after ours, so an operator can override any setting."""
    params: dict[str, Any] = conninfo_to_dict(database_url)
    for keyword, value in CLIENT_KEYWORDS.items():
        params.setdefault(keyword, value)
    params["application_name"] = APPLICATION_NAME
    ours = " ".join(f"-c {name}={value}" for name, value in SESSION_SETTINGS.items())
    theirs = params.get("options") or os.environ.get("PGOPTIONS") or ""
    params["options"] = f"{ours} {theirs}".strip()
    return params


def lock_key(job: str) -> int:
    """A stable 32-bit advisory lock key per job name (same in every process)."""
    return zlib.crc32(f"fleettickets:{job}".encode())


@dataclass(frozen=True)
class LockHolder:
    """The session holding a job's lock, as far as this session may see it."""

    pid: int
    since: datetime | None  # when its run started, else when its session did
    session_started: datetime | None
    state: str | None  # pg_stat_activity.state: active, idle, idle in transaction
    state_since: datetime | None
    application_name: str | None
    client_addr: str | None
    run_id: str | None  # tickets.ingest_runs.run_id, for an ingest --apply run

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def describe(self) -> str:
        who = f"backend pid {self.pid}"
        if self.application_name or self.client_addr:
            who += " (" + ", ".join(filter(None, [self.application_name, self.client_addr])) + ")"
        if self.run_id:
            who += f", run {self.run_id}"
        since = "holding it since" if self.run_id else "in a session started"
        state = f"state {self.state or 'unknown'}"
        if self.state_since:
            state += f" since {_eat(self.state_since)}"
        return f"{who}, {since} {_eat(self.since)}, {state}"


def lock_holder(conn: psycopg.Connection, job: str) -> LockHolder | None:
    """Who holds `job`'s advisory lock now (a bigint key: classid 0, objsubid 1), if anyone."""
    row = conn.execute(
        "SELECT l.pid, a.backend_start, a.state, a.state_change, a.application_name, "
        "host(a.client_addr) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
        "LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE d.datname = current_database() AND l.locktype = 'advisory' AND l.granted "
        "AND l.classid = 0 AND l.objid::bigint = %s AND l.objsubid = 1",
        (lock_key(job),),
    ).fetchone()
    if row is None:
        return None
    pid, session_started, state, state_since, application_name, client_addr = row
    run_id, run_started = _holder_run(conn, pid, session_started) if job == "ingest" else (None, None)
    return LockHolder(
        pid=pid,
        since=run_started or session_started,
        session_started=session_started,
        state=state,
        state_since=state_since,
        application_name=application_name or None,
        client_addr=client_addr,
        run_id=run_id,
    )


def _holder_run(conn: psycopg.Connection, pid: int, session_started: datetime | None) -> tuple[Any, Any]:
    """The ingest run recorded by that session: its pid, and started after the session did
    (an older row with the same pid belongs to an earlier session)."""
    recorded = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('tickets.ingest_runs') "
        "AND attname = 'backend_pid' AND NOT attisdropped)"
    ).fetchone()
    if not recorded or not recorded[0] or session_started is None:
        return None, None
    row = conn.execute(
        "SELECT run_id, started_at FROM tickets.ingest_runs WHERE backend_pid = %s "
        "AND started_at >= %s ORDER BY started_at DESC LIMIT 1",
        (pid, session_started),
    ).fetchone()
    return (row[0], row[1]) if row else (None, None)


def lock_busy_message(job: str, holder: LockHolder | None, waited: float) -> str:
    if holder is None:  # released in the instant between the last try and this look
        return (
            f"another fleettickets {job} run held the lock; nothing was done "
            "(the next scheduled run will pick up the work)"
        )
    waiting = f" (waited {waited:g} s for it)" if waited else ""
    return (
        f"another fleettickets {job} run holds the lock{waiting}; nothing "
        f"was done. Holder: {holder.describe()}. The next scheduled run will pick up the "
        f"work; if that run is known to be dead, end its session with "
        f"SELECT pg_terminate_backend({holder.pid}); and run again"
    )


@contextlib.contextmanager
def job_lock(conn: psycopg.Connection, job: str, *, wait: bool = False, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold a session-level advisory lock for `job` on `conn` for the duration.

    Session-level, because the job spans many transactions (one per file). The
    connection must be a direct one, not through a transaction-pooling bouncer.
    With `wait=True` a held lock is queued for; otherwise it is retried for
    `wait_seconds` (e.g. DEFAULT_LOCK_WAIT_SECONDS, time for the server to
    abandon a killed run) and then LockBusy names the holder.
    """
    key = lock_key(job)
    if wait:
        if not _try_lock(conn, key):
            holder = lock_holder(conn, job)
            logger.info("waiting for the %s lock, held by %s", job, holder.describe() if holder else "another session")
            conn.execute("SELECT pg_advisory_lock(%s)", (key,))
    elif not _try_lock_for(conn, job, wait_seconds):
        raise LockBusy(lock_busy_message(job, lock_holder(conn, job), wait_seconds))
    if not conn.autocommit:
        conn.commit()
    try:
        yield
    finally:
        if not conn.closed:
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.rollback()
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
            if not conn.autocommit:
                conn.commit()


def _try_lock(conn: psycopg.Connection, key: int) -> bool:
    got = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
    return bool(got and got[0])


def _try_lock_for(conn: psycopg.Connection, job: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    key = lock_key(job)
    if _try_lock(conn, key):
        return True
    if seconds > 0:
        holder = lock_holder(conn, job)
        logger.info(
            "the %s lock is held by %s; waiting up to %g s for it",
            job,
            holder.describe() if holder else "another session",
            seconds,
        )
    while (left := deadline - time.monotonic()) > 0:
        if not conn.autocommit:
            conn.rollback()  # never sit idle in a transaction while waiting
        time.sleep(min(LOCK_POLL_SECONDS, left))
        if _try_lock(conn, key):
            return True
    return False


def _eat(moment: datetime | None) -> str:
    return eat_text(moment, seconds=True, missing="an unknown time")
