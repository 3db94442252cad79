"""The two gazetteer tables: one map of their names and columns, how a key is spelled, and re-placing tickets."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import psycopg

Kind = Literal["cluster", "location"]


@dataclass(frozen=True)
class GazetteerTable:
    name: str  # in the tickets schema
    key_column: str
    name_column: str


TABLES: dict[Kind, GazetteerTable] = {
    "cluster": GazetteerTable("geo_clusters", "cluster_key", "cluster"),
    "location": GazetteerTable("geo_locations", "location_key", "location_name"),
}

# tickets.place_key() trims spaces only (btrim) and folds runs of any whitespace.
_WHITESPACE = re.compile(r"\s+")


def place_key(text: str | None) -> str | None:
    """The Python twin of SQL tickets.place_key(); tests/test_rules.py holds them to the same answers."""
    return _WHITESPACE.sub(" ", (text or "").strip(" ")).lower() or None


def refresh_geometry(conn: psycopg.Connection, *, locations: list[str], clusters: list[str]) -> int:
    """Re-place the tickets that name these gazetteer keys; returns how many moved."""
    row = conn.execute("SELECT tickets.refresh_geometry(%s, %s)", (locations, clusters)).fetchone()
    return int(row[0]) if row and row[0] is not None else 0
