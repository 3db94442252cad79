"""Migration 39 writes the GeoJSON features as text: the payload must stay byte for byte what 31's body gave.

Migration 31's reporting.inc_dashboard_payload (the body before 39) is
installed beside the live one as pg_temp.dashboard_31. A seeded set of
tickets holds the values a text writer can get wrong: quotes, backslashes,
control characters and non-ASCII letters in every text field, missing
fields, clocks in the future and none at all, coordinates of every length,
places from the feed and from the gazetteer. Both functions are asked the
same questions (windows, clusters, statuses, feature caps, instants) and must
answer with the same text.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import psycopg
import pytest

from tests.crafted import EAT, ago, closed_ticket, insert, open_ticket
from tests.fix_clock import TEST_NOW
from tests.migration_text import function_as_created

TODAY = TEST_NOW.astimezone(EAT).date()

# Values JSON must escape, and ones it must not (non-ASCII, '/', DEL).
AWKWARD = ['Say "hi"', "back\\slash", "tab\there", "new\nline", "bell\x07", "Mũthaiga é/ü", "del\x7f", "x\x1f"]
CLUSTERS = ["Kayole", "KAYOLE", "Pipeline", "Umoja", None, 'Kay"ole', "Pipe\\line"]


def text_value(rng: random.Random, plain: str) -> str | None:
    roll = rng.random()
    if roll < 0.08:
        return None
    if roll < 0.2:
        return rng.choice(AWKWARD)
    return plain


def coordinate(rng: random.Random, centre: float) -> str:
    digits = rng.choice([0, 1, 4, 6, 9, 15])
    return str(round(centre + rng.uniform(-0.05, 0.05), digits))


def seed_tickets(conn: psycopg.Connection, count: int = 240) -> None:
    rng = random.Random(39)
    conn.execute(
        "INSERT INTO tickets.geo_clusters (cluster_key, cluster, latitude, longitude) "
        "VALUES ('umoja', 'Umoja', -1.283, 36.895)"
    )
    for n in range(count):
        ticket_id = f"INC{n:05d}" if n % 17 else f'INC"{n}\\x'
        created = ago(TEST_NOW, hours=rng.uniform(-6, 24 * 45))
        fields: dict[str, Any] = {
            "cluster": rng.choice(CLUSTERS),
            "region": text_value(rng, "Nairobi East"),
            "location_name": text_value(rng, f"NW_FDT{n % 9}"),
            "assigned_team": text_value(rng, f"East {n % 4}"),
            "owner": text_value(rng, f"eng{n % 11}"),
            "created_at_service": "" if n % 5 == 0 else created,
            "first_seen_at": "" if n % 13 == 0 else created,
        }
        if n % 4 != 1:
            fields["latitude"] = coordinate(rng, -1.28)
            fields["longitude"] = coordinate(rng, 36.85)
        if n % 3 == 0:
            status = rng.choice(["open", "assigned", "in_progress", "on_hold"])
            raw = open_ticket(**fields, normalized_status=status)
        else:
            status = rng.choice(["resolved", "closed", "cancelled"])
            hours = rng.uniform(0, 24 * 30)
            fields["closed_at"] = ago(TEST_NOW, hours=hours + rng.choice([-3, 0, 3]))
            fields["mttr"] = "" if n % 7 == 0 else f"{rng.uniform(0, 90):.2f}"
            fields["sla_status"] = text_value(rng, rng.choice(["Compliant", "Breached"]))
            raw = closed_ticket(**fields, normalized_status=status)
        insert(conn, ticket_id, {k: v for k, v in raw.items() if v is not None})


@pytest.fixture(scope="module")
def conn(module_db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(module_db_url, autocommit=True) as connection:
        seed_tickets(connection)
        connection.execute(
            function_as_created(
                "31_trends_and_team_closures.sql", "reporting.inc_dashboard_payload", "pg_temp.dashboard_31"
            )
        )
        yield connection


def questions() -> list[dict[str, Any]]:
    rng = random.Random(3939)
    windows: list[dict[str, Any]] = [
        {"p_window": w} for w in ("today", "yesterday", "last_7_days", "last_30_days", "this_month")
    ]
    windows.append({"p_window": "custom", "p_from": TODAY - timedelta(days=60), "p_to": TODAY + timedelta(days=1)})
    windows.append({"p_window": "custom", "p_from": date(2001, 1, 1), "p_to": date(2001, 1, 2)})
    asked = []
    for _ in range(90):
        args = dict(rng.choice(windows))
        args["p_cluster"] = rng.choice([None, "kayole", " Pipeline ", "UMOJA", 'kay"ole', "pipe\\line", "nowhere"])
        args["p_status"] = rng.choice([None, None, "open", "closed", "in_progress"])
        args["p_max_features"] = rng.choice([None, 10000, 1, 2, 7, 40])
        args["p_now"] = TEST_NOW + timedelta(hours=rng.choice([0, -30, 26.5, 24 * 3]))
        asked.append(args)
    return asked


def test_the_payload_is_byte_for_byte_migration_31s(conn: psycopg.Connection) -> None:
    for args in questions():
        named = ", ".join(f"{name} => %({name})s" for name in args)
        new, old = conn.execute(
            f"SELECT reporting.inc_dashboard_payload({named})::text, pg_temp.dashboard_31({named})::text", args
        ).fetchone()
        assert new == old, args


def test_the_seed_reaches_both_ways_of_writing_a_feature(conn: psycopg.Connection) -> None:
    """Guards the fixture: features needing escapes and plain ones, open and closed, feed and gazetteer."""
    payload = conn.execute(
        "SELECT reporting.inc_dashboard_payload(p_window => 'last_30_days', p_max_features => NULL, p_now => %s)",
        (TEST_NOW,),
    ).fetchone()[0]
    for section in ("open", "closed"):
        features = payload[section]["features"]
        props = [f["properties"] for f in features]
        assert len(features) > 30, section
        assert any('"' in (p["cluster"] or "") or "\\" in (p["cluster"] or "") for p in props), section
        assert any(any(v in AWKWARD[:5] for v in p.values()) for p in props), section
        assert any(p["owner"] is None for p in props), section
        assert {p["geo_source"] for p in props} >= {"feed", "cluster"}, section
        assert any('"' in f["id"] for f in features), section
    hours = [p["hours_open"] for p in (f["properties"] for f in payload["open"]["features"])]
    assert None in hours and any(h is not None and h < 0 for h in hours)


def widest_text(rng: random.Random, grows_when_lowered: bool) -> str:
    """Incompressible text past the 256-byte clip; some letters grow by half under lower()."""
    letters = ["İ", "Ⱥ", "Ⱦ"] if grows_when_lowered else []
    return "".join(
        rng.choice(letters) if letters and rng.random() < 0.6 else chr(rng.randrange(0x1F300, 0x1FAFF))
        for _ in range(400)
    )


def test_the_widest_closed_ticket_still_fits_the_closed_cover_index(db_url: str) -> None:
    """Migration 39 widens inc_closed_cover_idx: every column it carries at its widest stays under the btree limit."""
    rng = random.Random(2704)
    fields = {
        name: widest_text(rng, name in ("region", "normalized_status"))
        for name in ("cluster", "region", "location_name", "assigned_team", "owner", "sla_status", "normalized_status")
    }
    ticket_id = "".join(chr(rng.randrange(0x1F300, 0x1FAFF)) for _ in range(100))
    with psycopg.connect(db_url, autocommit=True) as conn:
        insert(
            conn,
            ticket_id,
            closed_ticket(
                **fields,
                latitude="-1.28",
                longitude="36.85",
                created_at_service=ago(TEST_NOW, hours=5),
                closed_at=ago(TEST_NOW, hours=1),
                mttr="4.00",
            ),
        )
        width = conn.execute(
            "SELECT octet_length(region) + octet_length(normalized_status) + octet_length(ticket_id) FROM tickets.inc"
        ).fetchone()[0]
        payload = conn.execute(
            "SELECT reporting.inc_dashboard_payload(p_window => 'today', p_now => %s)", (TEST_NOW,)
        ).fetchone()[0]
    assert width > 256 + 256 + 390  # both lowered columns grew past the clip
    assert [f["id"] for f in payload["closed"]["features"]] == [ticket_id]
