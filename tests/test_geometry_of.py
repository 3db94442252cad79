"""Migration 44's geometry rule places every ticket where migration 14's resolve_geometry did.

A first load places its rows by joining tickets.geometry_of with the
per-row trigger off; every other write goes through the trigger, which now
calls the same rule. Both are compared with 14's body, ticket by ticket, on
raw rows and gazetteers drawn at random around every branch of the rule:
coordinates in and out of range, (0, 0), numbers the feed writes badly,
place names in other cases and spacing, unusable and unplaced gazetteer
rows, aliases to usable and unusable clusters.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime

import psycopg
import pytest
from hypothesis import example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

from fleettickets.load import FileResult, load_change_file, prepare_session
from tests.crafted import EAT
from tests.migration_text import function_as_created

pytestmark = pytest.mark.clock

RESOLVE_14 = function_as_created(
    "14_resolve_geometry_one_lookup.sql", "tickets.resolve_geometry", "pg_temp.resolve_geometry_14"
)

NUMBERS = ["-1.28", "36.82", " 36.9 ", "0", "0.0", "-0", "90", "90.5", "-180", "180.01", "1e3", "abc", "", ".5", None]
# Gazetteer names and the spellings a feed writes them in.
PLACES = ["Kayole Junction", "KAYOLE  junction", " kayole junction ", "Umoja\tMarket", "Pipeline", "Nowhere", "", None]
CLUSTERS = ["Kayole", " KAYOLE ", "KYL", "Umoja", "UMJ", "Pipeline", "Mars", "", None]

# A gazetteer row: usable ("ok"), refused with its point kept ("rejected"),
# not found (no point), or no row at all.
STATES = st.sampled_from(["ok", "rejected", "not_found", "absent"])
LOCATION_ROWS = st.fixed_dictionaries({"Kayole Junction": STATES, "Umoja Market": STATES, "Pipeline": STATES})
CLUSTER_ROWS = st.fixed_dictionaries({"Kayole": STATES, "Umoja": STATES, "Pipeline": STATES})
TICKETS = st.lists(
    st.fixed_dictionaries(
        {
            "latitude": st.sampled_from(NUMBERS),
            "longitude": st.sampled_from(NUMBERS),
            "location_name": st.sampled_from(PLACES),
            "cluster": st.sampled_from(CLUSTERS),
        }
    ),
    min_size=1,
    max_size=12,
)


@pytest.fixture(scope="module")
def shared_conn(module_db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(module_db_url, autocommit=True) as conn:
        prepare_session(conn)
        conn.execute(RESOLVE_14)
        yield conn


def seed_gazetteer(conn: psycopg.Connection, locations: dict[str, str], clusters: dict[str, str]) -> None:
    # Every row its own point, so a ticket placed by the wrong row is told apart.
    for table, rows, first in (("geo_locations", locations, -1.20), ("geo_clusters", clusters, -1.30)):
        insert = (
            "INSERT INTO tickets.geo_locations (location_key, location_name, latitude, longitude, status) "
            if table == "geo_locations"
            else "INSERT INTO tickets.geo_clusters (cluster_key, cluster, latitude, longitude, status) "
        ) + "VALUES (tickets.place_key(%s), %s, %s, %s, %s)"
        for offset, (name, state) in enumerate(rows.items()):
            if state != "absent":
                lat, lon = (None, None) if state == "not_found" else (first - offset / 100, 36.9 + offset / 100)
                conn.execute(insert, (name, name, lat, lon, state))
    # Coded cluster names: one to Kayole, one to a cluster the gazetteer lacks.
    conn.execute(
        "INSERT INTO tickets.cluster_aliases (alias_key, cluster_key) VALUES ('kyl', 'kayole'), ('umj', 'nairobi west')"
    )


def change_file(tickets: list[dict[str, str | None]]) -> io.BytesIO:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["ticket_id", "normalized_status", "is_actionable", *tickets[0]])
    for number, ticket in enumerate(tickets):
        writer.writerow([f"T{number}", "open", "true", *("" if v is None else v for v in ticket.values())])
    return io.BytesIO(text.getvalue().encode())


def placements(conn: psycopg.Connection, query: str) -> dict[str, tuple[str | None, str | None]]:
    return {r[0]: (r[1], r[2]) for r in conn.execute(query).fetchall()}


STORED = "SELECT ticket_id, geo_source, ST_AsEWKT(geom) FROM tickets.inc"
BY_14 = "SELECT ticket_id, r.geo_source, ST_AsEWKT(r.geom) FROM tickets.inc, pg_temp.resolve_geometry_14(raw) r"


@hypothesis_settings(max_examples=40, deadline=None, database=None)
@given(locations=LOCATION_ROWS, clusters=CLUSTER_ROWS, tickets=TICKETS)
@example(
    locations={"Kayole Junction": "ok", "Umoja Market": "ok", "Pipeline": "ok"},
    clusters={"Kayole": "ok", "Umoja": "ok", "Pipeline": "ok"},
    tickets=[
        {"latitude": "-1.28", "longitude": "36.82", "location_name": "Pipeline", "cluster": "Kayole"},
        {"latitude": "0", "longitude": "0", "location_name": " kayole junction ", "cluster": "Kayole"},
        {"latitude": "90.5", "longitude": "36.82", "location_name": "Nowhere", "cluster": "KYL"},
        {"latitude": None, "longitude": None, "location_name": None, "cluster": "UMJ"},
    ],
)
def test_a_first_load_and_the_trigger_place_tickets_as_migration_14_did(
    shared_conn: psycopg.Connection,
    locations: dict[str, str],
    clusters: dict[str, str],
    tickets: list[dict[str, str | None]],
) -> None:
    conn = shared_conn
    with conn.transaction(force_rollback=True):
        seed_gazetteer(conn, locations, clusters)
        result = FileResult(
            file_key="automations/inc/changes/2026-06-15T08-00-00.csv",
            file_ts=datetime(2026, 6, 15, 8, tzinfo=EAT),
            etag="e",
            size_bytes=1,
            late=False,
        )
        load_change_file(conn, change_file(tickets), result, "run")  # into an empty table: the first load
        assert result.inserted == len(tickets)
        first_load = placements(conn, STORED)
        assert first_load == placements(conn, BY_14)
        enabled = conn.execute("SELECT tgenabled FROM pg_trigger WHERE tgname = 'inc_resolve_geometry_insert'")
        assert enabled.fetchall() == [("O",)], "the trigger is on again after the load"

        raws = conn.execute("SELECT ticket_id, raw FROM tickets.inc").fetchall()
        conn.execute("DELETE FROM tickets.inc")
        for ticket_id, raw in raws:  # one row at a time, through the trigger
            conn.execute("INSERT INTO tickets.inc (ticket_id, raw) VALUES (%s, %s)", (ticket_id, Jsonb(raw)))
        assert placements(conn, STORED) == first_load
