"""Schema migrations: plain SQL files applied in order, recorded with a checksum, under a lock."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from fleettickets.db import connect, job_lock
from fleettickets.errors import MigrationError
from fleettickets.settings import Settings

logger = logging.getLogger(__name__)

MIGRATION_NAME = re.compile(r"^(\d{2,4})_[a-z0-9_]+\.sql$")

LEDGER_DDL = """
CREATE SCHEMA IF NOT EXISTS tickets;
CREATE TABLE IF NOT EXISTS tickets.schema_migrations (
    filename    text PRIMARY KEY,
    checksum    text NOT NULL,
    description text,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
"""


@dataclass(frozen=True)
class Migration:
    filename: str
    number: int
    sql: str
    checksum: str
    description: str


@dataclass(frozen=True)
class MigrationPlan:
    applied: list[str]
    pending: list[Migration]
    # Applied by another run while this one waited for the lock.
    applied_meanwhile: list[str] = field(default_factory=list)


def default_migrations_dir() -> Path:
    """The repository's `migrations/`, or the copy packaged inside the wheel."""
    package_dir = Path(__file__).resolve().parent
    for candidate in (package_dir.parent / "migrations", package_dir / "_migrations"):
        if candidate.is_dir():
            return candidate
    raise MigrationError(f"no migrations folder found next to {package_dir}")


def read_migrations(directory: Path) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = MIGRATION_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files must be named NN_lowercase_name.sql")
        sql = path.read_text(encoding="utf-8")
        migrations.append(
            Migration(
                filename=path.name,
                number=int(match.group(1)),
                sql=sql,
                checksum=hashlib.sha256(sql.encode("utf-8")).hexdigest(),
                description=_leading_comment(sql),
            )
        )
    migrations.sort(key=lambda m: m.number)
    seen: dict[int, str] = {}
    for m in migrations:
        if m.number in seen:
            raise MigrationError(f"{seen[m.number]} and {m.filename} share the number {m.number}")
        seen[m.number] = m.filename
    return migrations


def _leading_comment(sql: str) -> str:
    lines = []
    for line in sql.splitlines():
        stripped = line.strip()
        if not stripped.startswith("--"):
            break
        lines.append(stripped.lstrip("-").strip())
    return " ".join(part for part in lines if part)


ADOPT_HINT = (
    "it looks like the earlier loader's database: run `fleettickets adopt` to take it "
    'over (docs/operations.md, "Moving from the deployed loader"); nothing was changed'
)


def _ledger(conn: psycopg.Connection) -> dict[str, str]:
    row = conn.execute(
        "SELECT to_regclass('tickets.schema_migrations') IS NOT NULL, "
        "EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass('tickets.schema_migrations') "
        "AND attname = 'checksum' AND NOT attisdropped), "
        "EXISTS (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'tickets' AND c.relkind IN ('r', 'p', 'v', 'm'))"
    ).fetchone()
    assert row is not None
    has_ledger, has_checksum, has_relations = row
    if has_ledger and not has_checksum:
        raise MigrationError(f"tickets.schema_migrations is not this program's ledger; {ADOPT_HINT}")
    if not has_ledger and has_relations:
        raise MigrationError(f"the tickets schema holds tables but no migration ledger; {ADOPT_HINT}")
    if not has_ledger:
        return {}
    rows = conn.execute("SELECT filename, checksum FROM tickets.schema_migrations")
    return dict(rows.fetchall())


def plan(conn: psycopg.Connection, migrations: list[Migration]) -> MigrationPlan:
    """Compare files with the ledger; refuse drift and files that vanished."""
    ledger = _ledger(conn)
    by_name = {m.filename: m for m in migrations}
    for filename, checksum in sorted(ledger.items()):
        migration = by_name.get(filename)
        if migration is None:
            raise MigrationError(
                f"{filename} is recorded as applied but is missing from the migrations "
                "folder; restore it (applied migrations are never deleted)"
            )
        if migration.checksum != checksum:
            raise MigrationError(
                f"{filename} has changed since it was applied (checksum drift: "
                f"applied {checksum[:12]}, file {migration.checksum[:12]}); applied "
                "migrations are never edited: revert the file and add a new migration"
            )
    pending = [m for m in migrations if m.filename not in ledger]
    applied_numbers = [by_name[f].number for f in ledger]
    if pending and applied_numbers and pending[0].number < max(applied_numbers):
        raise MigrationError(
            f"{pending[0].filename} is numbered below an applied migration; renumber it after the newest applied one"
        )
    return MigrationPlan(applied=sorted(ledger), pending=pending)


def pending_migrations(conn: psycopg.Connection, directory: Path | None = None) -> MigrationPlan:
    """What `migrate` would do, without taking the lock or writing anything."""
    return plan(conn, read_migrations(directory or default_migrations_dir()))


def apply_migrations(conn: psycopg.Connection, directory: Path | None = None) -> list[str]:
    """Apply every pending migration, each in its own transaction; return their names.

    Concurrent runs queue on an advisory lock and then find nothing left to do,
    so a migration is never applied twice.
    """
    migrations = read_migrations(directory or default_migrations_dir())
    applied: list[str] = []
    with job_lock(conn, "migrate", wait=True):
        _ledger(conn)  # refuses a database this program did not set up, before writing
        with conn.transaction():
            conn.execute(LEDGER_DDL)
        for migration in plan(conn, migrations).pending:
            with conn.transaction():
                apply_one(conn, migration)
            applied.append(migration.filename)
    return applied


def apply_one(conn: psycopg.Connection, migration: Migration) -> None:
    """Run one migration and record it, inside the caller's transaction."""
    logger.info("applying %s", migration.filename, extra={"migration": migration.filename})
    try:
        with conn.transaction():
            conn.execute(migration.sql)
            conn.execute(
                "INSERT INTO tickets.schema_migrations (filename, checksum, description) VALUES (%s, %s, %s)",
                (migration.filename, migration.checksum, migration.description),
            )
    except psycopg.Error as exc:
        raise MigrationError(f"{migration.filename} failed and was rolled back: {str(exc).strip()}") from None


def migrate_database(settings: Settings, *, dry_run: bool = False) -> MigrationPlan:
    """The `migrate` command: returns what was (or, dry, would be) applied."""
    with connect(settings, autocommit=True) as conn:
        if dry_run:
            return pending_migrations(conn)
        before = _ledger(conn)
        applied = apply_migrations(conn)
        meanwhile = set(_ledger(conn)) - set(before) - set(applied)
        return MigrationPlan(
            applied=sorted(before),
            pending=[m for m in read_migrations(default_migrations_dir()) if m.filename in applied],
            applied_meanwhile=sorted(meanwhile, key=_number_of),
        )


def _number_of(filename: str) -> int:
    match = MIGRATION_NAME.match(filename)
    return int(match.group(1)) if match else 0


def require_current_schema(conn: psycopg.Connection) -> None:
    """Jobs refuse to run against a schema that is behind the code."""
    pending = pending_migrations(conn).pending
    if pending:
        raise MigrationError(
            f"the database schema is behind ({len(pending)} pending, first "
            f"{pending[0].filename}); run `fleettickets migrate` first"
        )
