"""tickets.inc_open_sla: the SLA clock, hours open and state of every open ticket against 48 h."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import psycopg
import pytest

from tests.crafted import ago, closed_ticket, insert, open_ticket

pytestmark = pytest.mark.clock


def sla_rows(conn: psycopg.Connection) -> dict[str, tuple]:
    rows = conn.execute(
        "SELECT ticket_id, sla_clock_source, hours_open, sla_state FROM tickets.inc_open_sla"
    ).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def test_clock_hours_and_state_at_every_boundary(conn: psycopg.Connection) -> None:
    with conn.transaction():
        now = conn.execute("SELECT now()").fetchone()[0]
        cases = {
            "FRESH": open_ticket(created_at_service=ago(now, hours=10)),
            "JUST_WITHIN": open_ticket(created_at_service=ago(now, hours=36, seconds=-1)),
            "AT_36H": open_ticket(created_at_service=ago(now, hours=36)),
            "AT_48H": open_ticket(created_at_service=ago(now, hours=48)),
            "PAST_48H": open_ticket(created_at_service=ago(now, hours=48, seconds=1)),
            "LONG_AGO": open_ticket(created_at_service=ago(now, hours=123, minutes=27)),
            "FIRST_SEEN": open_ticket(created_at_service="", first_seen_at=ago(now, hours=40)),
            "BOTH": open_ticket(created_at_service=ago(now, hours=5), first_seen_at=ago(now, hours=60)),
            "DEBRIS": open_ticket(created_at_service="#VALUE!", first_seen_at="0000-00-00 00:00:00"),
            "NO_CLOCK": open_ticket(),
            "CLOSED": closed_ticket(created_at_service=ago(now, hours=100)),
            "BLANK_FLAG": {"is_actionable": "", "created_at_service": ago(now, hours=1)},
        }
        for ticket_id, raw in cases.items():
            insert(conn, ticket_id, raw)
        got = sla_rows(conn)  # same transaction, so the view's now() is `now`
    assert got == {
        "FRESH": ("created_at_service", Decimal("10"), "within"),
        "JUST_WITHIN": ("created_at_service", Decimal("36"), "within"),
        "AT_36H": ("created_at_service", Decimal("36"), "at_risk"),
        "AT_48H": ("created_at_service", Decimal("48"), "at_risk"),
        "PAST_48H": ("created_at_service", Decimal("48"), "breached"),
        "LONG_AGO": ("created_at_service", Decimal("123.45"), "breached"),
        "FIRST_SEEN": ("first_seen_at", Decimal("40"), "at_risk"),
        "BOTH": ("created_at_service", Decimal("5"), "within"),
        "DEBRIS": (None, None, "unknown"),
        "NO_CLOCK": (None, None, "unknown"),
    }


def test_hours_open_is_rounded_to_hundredths_and_due_is_clock_plus_48h(
    conn: psycopg.Connection,
) -> None:
    with conn.transaction():
        now = conn.execute("SELECT now()").fetchone()[0]
        insert(conn, "T1", open_ticket(created_at_service=ago(now, hours=7, minutes=20)))
        hours, clock, due = conn.execute(
            "SELECT hours_open::text, sla_clock_at, sla_due_at FROM tickets.inc_open_sla"
        ).fetchone()
    assert hours == "7.33"
    assert clock == now - timedelta(hours=7, minutes=20)
    assert due == clock + timedelta(hours=48)


def test_dispatch_columns_and_geography(conn: psycopg.Connection) -> None:
    insert(
        conn,
        "T1",
        open_ticket(
            cluster="Quarry Road",
            region="Nairobi East",
            assigned_team="East Team 2",
            owner="j.mwangi",
            latitude="-1.30",
            longitude="36.85",
        ),
    )
    got = conn.execute(
        "SELECT cluster, region, assigned_team, owner, geo_source, "
        "round(ST_Distance(geog, ST_MakePoint(36.85, -1.30)::geography)) FROM tickets.inc_open_sla"
    ).fetchone()
    assert got == ("Quarry Road", "nairobi east", "East Team 2", "j.mwangi", "feed", 0)


def test_the_view_uses_the_same_rule_as_the_function(conn: psycopg.Connection) -> None:
    with conn.transaction():
        now = conn.execute("SELECT now()").fetchone()[0]
        insert(conn, "T1", open_ticket(created_at_service=ago(now, hours=47)))
        later = now + timedelta(hours=2)
        state = conn.execute("SELECT sla_state, hours_open FROM tickets.inc_open_sla_at(%s)", (later,)).fetchone()
        live = conn.execute("SELECT sla_state FROM tickets.inc_open_sla").fetchone()
    assert state == ("breached", Decimal("49"))
    assert live == ("at_risk",)
