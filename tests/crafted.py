"""Crafted tickets whose times are set relative to one fixed instant, so assertions hold on any day."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg
from psycopg.types.json import Jsonb

EAT = timezone(timedelta(hours=3))


def eat_text(instant: datetime) -> str:
    """The feed's wall-clock form of an instant: EAT, no offset, microseconds kept."""
    return instant.astimezone(EAT).strftime("%Y-%m-%d %H:%M:%S.%f")


def ago(now: datetime, **delta: float) -> str:
    return eat_text(now - timedelta(**delta))


def insert(conn: psycopg.Connection, ticket_id: str, raw: dict) -> None:
    conn.execute(
        "INSERT INTO tickets.inc (ticket_id, raw) VALUES (%s, %s)",
        (ticket_id, Jsonb({"ticket_id": ticket_id, **raw})),
    )


def open_ticket(**fields: str) -> dict:
    return {"is_actionable": "true", "bucket": "pending", "normalized_status": "open", **fields}


def closed_ticket(**fields: str) -> dict:
    return {"is_actionable": "false", "bucket": "closed", "normalized_status": "closed", **fields}
