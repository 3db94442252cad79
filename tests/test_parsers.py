"""Migration 16's parser bodies give the same result as the bodies they replaced, input by input.

The generated columns keep values computed by the old bodies, so any
difference would leave two answers for one raw value in the table.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from datetime import datetime, timedelta

import psycopg
import pytest

from tests.migration_text import function_as_created

# 04's and 06's bodies, as they were before 16 replaced them.
REFERENCE_BODIES = [
    function_as_created("04_inc_latlng.sql", "tickets.feed_point", "pg_temp.feed_point_04"),
    function_as_created("06_inc_mttr_minutes.sql", "tickets.hours_to_minutes", "pg_temp.hours_to_minutes_06"),
]


def timestamp_inputs() -> Iterator[str]:
    """Every field at and around its limits, in the usual shape and the others."""
    years = ["0000", "0001", "0999", "1000", "1900", "2000", "2023", "2024", "2026", "2100", "9999"]
    months = ["00", "01", "02", "04", "09", "11", "12", "13", "99"]
    days = ["00", "01", "28", "29", "30", "31", "32"]
    times = ["00:00:00", "23:59:59", "24:00:00", "12:60:00", "12:00:60", "09:41:07", "99:99:99"]
    for y, m, d, t in itertools.product(years, months, days, times):
        yield f"{y}-{m}-{d} {t}"
    for base in ("2026-06-13 09:41:00", "2024-02-29 23:59:59", "2026-01-31 00:00:00"):
        yield base
        yield base.replace(" ", "T")
        yield f" {base} "
        yield f"{base}\t"
        yield base + ".250"
        yield base + "Z"
        yield base + "+01:00"
        yield base + "-0530"
        yield base[:16]
        yield base[:10]
        for i in range(len(base)):  # one character replaced: digits, separators, letters, multibyte
            for c in ("x", "-", ":", " ", "5", "٣", "é", "/"):
                yield base[:i] + c + base[i + 1 :]
    yield from [
        "",
        " ",
        "#VALUE!",
        "N/A",
        "now",
        "today",
        "epoch",
        "infinity",
        "2026-06-13 09:41:00 AM",
        "2026-6-13 09:41:00",
        "20260613 094100",
        "2026-06-13  9:41:00",
        "0000-00-00 00:00:00",
    ]
    rng = random.Random(16)
    for _ in range(3000):  # random digits in the usual shape
        yield "".join(c if c in "-: " else str(rng.randrange(10)) for c in "2026-06-13 09:41:00")
    start = datetime(1999, 12, 31, 23, 59, 59)
    for _ in range(3000):  # real instants, leap days and month ends among them
        yield (start + timedelta(seconds=rng.randrange(40 * 365 * 86400))).strftime("%Y-%m-%d %H:%M:%S")


def test_eat_ts_matches_the_general_parser_on_every_input(module_db_url: str) -> None:
    values = list(timestamp_inputs())
    with psycopg.connect(module_db_url) as conn:
        differing = conn.execute(
            "SELECT v, tickets.eat_ts(v), tickets.eat_ts_general(v) FROM unnest(%s::text[]) AS v "
            "WHERE tickets.eat_ts(v) IS DISTINCT FROM tickets.eat_ts_general(v)",
            (values,),
        ).fetchall()
        parsed = conn.execute("SELECT count(tickets.eat_ts(v)) FROM unnest(%s::text[]) AS v", (values,)).fetchone()
    assert differing == []
    assert parsed is not None and parsed[0] > 3000  # valid instants were compared, not only NULLs


@pytest.mark.parametrize(
    "settings",
    [
        "SET DateStyle = 'SQL, DMY'; SET TimeZone = 'America/New_York'",
        "SET DateStyle = 'German'; SET TimeZone = 'Asia/Kolkata'",
        "SET DateStyle = 'Postgres, MDY'; SET TimeZone = 'UTC'",
    ],
)
def test_eat_ts_does_not_depend_on_session_settings(module_db_url: str, settings: str) -> None:
    values = ["2026-06-13 09:41:00", "2024-02-29 23:59:59", "2026-01-02 03:04:05", "2026-06-13T09:41"]
    query = "SELECT extract(epoch FROM tickets.eat_ts(v)) FROM unnest(%s::text[]) AS v"
    with psycopg.connect(module_db_url) as conn:
        expected = conn.execute(query, (values,)).fetchall()
        for statement in settings.split(";"):
            conn.execute(statement)
        assert conn.execute(query, (values,)).fetchall() == expected
    assert expected[0] == (1781332860,)  # 2026-06-13 06:41:00 UTC


def test_feed_point_and_mttr_match_their_previous_bodies(module_db_url: str) -> None:
    numbers = [
        "",
        " ",
        "0",
        "0.0",
        "-0",
        "1",
        "-1.5",
        "36.82",
        "-1.28",
        "90",
        "90.0001",
        "-90",
        "180",
        "180.5",
        "-180",
        "1e3",
        "NaN",
        "abc",
        " 36.8 ",
        "+2.5",
        ".5",
        "5.",
        "87600",
        "87600.01",
        "1460",
        "0.016",
        "0.0083",
        "0.00833",
        "123456789012",
        "1234567890123",
        None,
    ]
    with psycopg.connect(module_db_url) as conn:
        for body in REFERENCE_BODIES:
            conn.execute(body)
        point_diffs = conn.execute(
            """SELECT lat, lon FROM unnest(%(n)s::text[]) AS lat, unnest(%(n)s::text[]) AS lon,
                      LATERAL (SELECT jsonb_build_object('latitude', lat, 'longitude', lon) AS raw) r
                WHERE ST_AsEWKT(tickets.feed_point(r.raw))
                      IS DISTINCT FROM ST_AsEWKT(pg_temp.feed_point_04(r.raw))""",
            {"n": numbers},
        ).fetchall()
        mttr_diffs = conn.execute(
            "SELECT v FROM unnest(%s::text[]) AS v "
            "WHERE tickets.hours_to_minutes(v) IS DISTINCT FROM pg_temp.hours_to_minutes_06(v)",
            (numbers,),
        ).fetchall()
        placed = conn.execute(
            'SELECT ST_AsText(tickets.feed_point(\'{"latitude": "-1.28", "longitude": "36.82"}\'))'
        ).fetchone()
        assert conn.execute("SELECT tickets.feed_point('{}')").fetchone() == (None,)
    assert point_diffs == []
    assert mttr_diffs == []
    assert placed == ("POINT(36.82 -1.28)",)
