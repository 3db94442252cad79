"""Rules that exist in both Python and SQL give the same answer on the same inputs."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from fleettickets.clean import parse_bool
from fleettickets.geocoding.tables import place_key

# Feed booleans as exports and spreadsheets write them, and what is not one.
BOOLEAN_TEXTS = [
    "true",
    "TRUE",
    "True",
    " t ",
    "T",
    "yes",
    "YES",
    "y",
    "1",
    "false",
    "FALSE",
    "False",
    "f",
    " F ",
    "no",
    "NO",
    "n",
    "0",
    "",
    " ",
    "2",
    "-1",
    "on",
    "off",
    "nope",
    "truth",
    "1.0",
    "yes please",
    "\u00a0",
    "\ttrue",
    "true\n",
    "\u00a0yes",
    "no\r",
]

# Place names as the feed and a reviewer's spreadsheet spell them.
PLACE_NAMES = [
    "Kayole",
    "KAYOLE",
    "  Kayole  ",
    "Kayole Junction",
    "KAYOLE   JUNCTION",
    "Kayole\tJunction",
    "Kayole\r\nJunction",
    "Kayole \t Junction ",
    "NW_KAYOLE_JUNCTION_FDT3",
    "South B",
    "O'Brien's Place",
    "",
    " ",
    "   ",
    "Mũkũru",
    "ÉCOLE",
    "Quarry Road, Phase 8",
]


@pytest.fixture(scope="module")
def sql_conn(module_db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(module_db_url, autocommit=True) as conn:
        yield conn


def sql_answers(conn: psycopg.Connection, function: str, inputs: list[str]) -> list[object]:
    rows = conn.execute(
        f"SELECT tickets.{function}(t) FROM unnest(%s::text[]) WITH ORDINALITY AS u(t, n) ORDER BY n",
        (inputs,),
    ).fetchall()
    return [row[0] for row in rows]


def test_feed_booleans_read_the_same_in_python_and_sql(sql_conn: psycopg.Connection) -> None:
    python = [parse_bool(text) for text in BOOLEAN_TEXTS]
    assert python == sql_answers(sql_conn, "to_bool", BOOLEAN_TEXTS)
    assert python.count(True) == 9 and python.count(False) == 9


def test_place_keys_are_spelled_the_same_in_python_and_sql(sql_conn: psycopg.Connection) -> None:
    python = [place_key(text) for text in PLACE_NAMES]
    assert python == sql_answers(sql_conn, "place_key", PLACE_NAMES)
    assert python[:3] == ["kayole"] * 3 and python[11:14] == [None] * 3
