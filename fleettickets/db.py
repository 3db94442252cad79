"""Database connections and the advisory locks that keep one runner per job."""

from __future__ import annotations

import contextlib
import re
import logging
import zlib
from collections.abc import Iterator

import psycopg

from fleettickets.errors import ConfigError, FleetTicketsError, LockBusy
from fleettickets.logs import redact
from fleettickets.settings import Settings

logger = logging.getLogger(__name__)

APPLICATION_NAME = "fleettickets"
# libpq's words for a connection option it cannot use, as opposed to a server it cannot reach.
_BAD_OPTION = re.compile(r"invalid (?:\w+ )*(?:value|number|option)|unrecognized|missing \"=\"")


def connect(settings: Settings, *, autocommit: bool = False) -> psycopg.Connection:
    """Open a connection, turning connection failures into a message without the password."""
    settings.require("database_url")
    assert settings.database_url is not None
    try:
        return psycopg.connect(
            settings.database_url,
            autocommit=autocommit,
            application_name=APPLICATION_NAME,
            connect_timeout=10,
        )
    except psycopg.OperationalError as exc:
        message = redact(str(exc).strip(), settings.secrets())
        if _BAD_OPTION.search(message):
            # libpq read the URL but refused a value in it: the setting is wrong.
            raise ConfigError(f"DATABASE_URL is not a valid connection string: {message}") from None
        raise FleetTicketsError(f"cannot connect to the database in DATABASE_URL: {message}") from None
    except psycopg.ProgrammingError as exc:
        raise ConfigError(
            "DATABASE_URL is not a valid connection string: "
            + redact(str(exc).strip(), settings.secrets())
        ) from None


def lock_key(job: str) -> int:
    """A stable 32-bit advisory lock key per job name (same in every process)."""
    return zlib.crc32(f"fleettickets:{job}".encode())


@contextlib.contextmanager
def job_lock(conn: psycopg.Connection, job: str, *, wait: bool = False) -> Iterator[None]:
    """Hold a session-level advisory lock for `job` on `conn` for the duration.

    Session-level, because the job spans many transactions (one per file). The
    connection must be a direct one, not through a transaction-pooling bouncer.
    With `wait=False` a held lock raises LockBusy at once instead of queueing.
    """
    key = lock_key(job)
    if wait:
        conn.execute("SELECT pg_advisory_lock(%s)", (key,))
    else:
        got = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        if not got or not got[0]:
            raise LockBusy(
                f"another fleettickets {job} run holds the lock; nothing was done "
                "(this run exits and the next scheduled run will pick up the work)"
            )
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
