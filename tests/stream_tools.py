"""Test helpers for the change stream: an independent model of the expected end state, bucket I/O."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from fleettickets import clock
from fleettickets.s3 import make_s3_client
from fleettickets.settings import Settings

NOISE = {
    "week_start",
    "week_end",
    "source_s3_bucket",
    "source_s3_key",
    "source_snapshot_id",
    "department",
    "source_type",
}


# Where the export writes: the INC_PREFIX default, which the test settings keep.
PREFIX = Settings().inc_prefix


def expected_state(paths: list[Path]) -> dict[str, dict[str, str | None]]:
    """The feed contract applied by hand, written apart from fleettickets.clean on purpose.

    Files in timestamp order; within a file the later row wins; alarms, the
    sentinel and blank keys are not tickets; noise columns go; region lower,
    raw_status upper; blanks are null.
    """
    state: dict[str, dict[str, str | None]] = {}
    for path in sorted(paths, key=lambda p: p.name):
        state.update(file_records(path))
    return state


def file_records(path: Path) -> dict[str, dict[str, str | None]]:
    """One file's tickets as the feed contract reads them, the later row of a ticket winning."""
    records: dict[str, dict[str, str | None]] = {}
    text = path.read_bytes().decode("utf-8-sig")
    for row in csv.DictReader(io.StringIO(text, newline="")):
        ticket = (row.get("ticket_id") or "").strip()
        if not ticket or ticket.upper().startswith("EXPORT STOPPED"):
            continue
        if (row.get("is_alarm") or "").strip().lower() in ("true", "1", "t", "yes", "y"):
            continue
        record = {k: (v if v != "" else None) for k, v in row.items() if k not in NOISE}
        record["ticket_id"] = ticket
        if record.get("region"):
            record["region"] = record["region"].lower()
        if record.get("raw_status"):
            record["raw_status"] = record["raw_status"].upper()
        records.pop(ticket, None)  # a ticket's later row also takes the later place
        records[ticket] = record
    return records


def db_state(url: str) -> dict[str, dict[str, Any]]:
    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT ticket_id, raw FROM tickets.inc").fetchall())


def fingerprint(url: str) -> dict[str, Any]:
    """Everything ingestion may write, in comparable form."""
    tables = {
        "inc": "SELECT ticket_id, raw, source_file_ts, source_key, ingested_at FROM tickets.inc ORDER BY 1",
        "files": "SELECT file_key, etag, rows_inserted, rows_updated FROM tickets.ingest_files ORDER BY 1",
        "runs": "SELECT run_id, status FROM tickets.ingest_runs ORDER BY 1",
        "meta": "SELECT dataset, metadata, updated_at FROM tickets.import_meta ORDER BY 1",
    }
    with psycopg.connect(url) as conn:
        return {name: conn.execute(query).fetchall() for name, query in tables.items()}


def upload(settings: Settings, paths: list[Path], folder: str = "changes/") -> None:
    client = make_s3_client(settings)
    for path in paths:
        client.put_object(
            Bucket=settings.s3_bucket, Key=f"{settings.inc_prefix}{folder}{path.name}", Body=path.read_bytes()
        )


def bucket_keys(settings: Settings) -> list[str]:
    client = make_s3_client(settings)
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=settings.s3_bucket)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


def job_env(db_url: str, settings: Settings, *, now: datetime | None = None, **extra: str) -> dict[str, str]:
    """The environment of a scheduled run; its clock is `now`, or the test's pinned clock."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        clock.NOW_ENV: (now or clock.now()).isoformat(),
        "DATABASE_URL": db_url,
        "RUSTFS_ENDPOINT": settings.s3_endpoint or "",
        "RUSTFS_ACCESS_KEY_ID": settings.s3_access_key_id or "",
        "RUSTFS_SECRET_ACCESS_KEY": settings.s3_secret_access_key or "",
        "RUSTFS_BUCKET": settings.s3_bucket,
    }
    env.update(extra)
    return env


def run_cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleettickets", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )
