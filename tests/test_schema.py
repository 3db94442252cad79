"""Core schema: generated columns survive every debris value; geometry precedence; the map function."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest
from psycopg.types.json import Jsonb

pytestmark = pytest.mark.clock

EAT = timezone(timedelta(hours=3))
TIME_COLUMNS = [
    "created_at_service",
    "scheduled_at",
    "closed_at",
    "first_seen_at",
    "last_seen_at",
    "source_created_at",
    "source_updated_at",
]
GENERATED_FUNCTIONS = [
    "clean_text",
    "eat_ts",
    "to_bool",
    "to_double",
    "to_numeric",
    "feed_point",
    "hours_to_minutes",
]
DEBRIS = ["#VALUE!", "0000-00-00 00:00:00", "N/A", "", "   ", "#N/A", "null", "now", "2026-02-30 10:00:00"]


def insert(conn: psycopg.Connection, ticket_id: str, raw: dict) -> None:
    conn.execute("INSERT INTO tickets.inc (ticket_id, raw) VALUES (%s, %s)", (ticket_id, Jsonb(raw)))


def row(conn: psycopg.Connection, ticket_id: str, columns: str) -> tuple:
    result = conn.execute(f"SELECT {columns} FROM tickets.inc WHERE ticket_id = %s", (ticket_id,)).fetchone()
    assert result is not None
    return result


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-06-13 09:41:00", datetime(2026, 6, 13, 9, 41, tzinfo=EAT)),
        ("2026-06-13T09:41:00", datetime(2026, 6, 13, 9, 41, tzinfo=EAT)),
        ("2026-06-13 09:41:00.250", datetime(2026, 6, 13, 9, 41, 0, 250000, tzinfo=EAT)),
        ("2026-06-13 09:41", datetime(2026, 6, 13, 9, 41, tzinfo=EAT)),
        (" 2026-06-13 09:41:00 ", datetime(2026, 6, 13, 9, 41, tzinfo=EAT)),
        ("2026-06-13", datetime(2026, 6, 13, tzinfo=EAT)),
        ("2024-02-29 23:59:59", datetime(2024, 2, 29, 23, 59, 59, tzinfo=EAT)),
        ("2026-06-13 09:41:00Z", datetime(2026, 6, 13, 9, 41, tzinfo=UTC)),
        ("2026-06-13 09:41:00+01:00", datetime(2026, 6, 13, 8, 41, tzinfo=UTC)),
        *[(debris, None) for debris in DEBRIS],
        ("2026-13-01 00:00:00", None),
        ("2026-06-13 24:00:00", None),
        ("13/06/2026 09:41", None),
        ("yesterday", None),
        (None, None),
    ],
)
def test_eat_ts_reads_wall_clock_or_null(module_db_url: str, text: str | None, expected: datetime | None) -> None:
    with psycopg.connect(module_db_url) as conn:
        assert conn.execute("SELECT tickets.eat_ts(%s)", (text,)).fetchone() == (expected,)


def test_generated_functions_are_immutable(module_db_url: str) -> None:
    with psycopg.connect(module_db_url) as conn:
        rows = conn.execute(
            "SELECT proname, provolatile FROM pg_proc WHERE pronamespace = 'tickets'::regnamespace "
            "AND proname = ANY(%s)",
            (GENERATED_FUNCTIONS,),
        ).fetchall()
    assert sorted(rows) == [(n, "i") for n in sorted(GENERATED_FUNCTIONS)]


@pytest.mark.parametrize("debris", DEBRIS + ["TRUE", "1", "-", "abc", "1e999", "99999999999999999999"])
def test_debris_in_every_column_never_fails_an_insert(conn: psycopg.Connection, debris: str) -> None:
    raw = dict.fromkeys(TIME_COLUMNS, debris)
    raw.update(
        dict.fromkeys(
            [
                "normalized_status",
                "raw_status",
                "bucket",
                "is_actionable",
                "cluster",
                "region",
                "location_name",
                "assigned_team",
                "owner",
                "sla_status",
                "mttr",
                "latitude",
                "longitude",
                "is_alarm",
                "is_auto_created",
                "is_auto_closed",
                "service_type",
            ],
            debris,
        )
    )
    insert(conn, "WOT1", raw)
    times = row(conn, "WOT1", ", ".join(TIME_COLUMNS))
    assert times == (None,) * 7
    expected_source = "feed" if debris == "1" else None  # (1, 1) is a real coordinate
    assert row(conn, "WOT1", "geo_source") == (expected_source,)


def test_booleans_and_text_columns(conn: psycopg.Connection) -> None:
    cases = {"A": "TRUE", "B": "1", "C": "false", "D": "0", "E": "", "F": "maybe", "G": "t"}
    for ticket_id, value in cases.items():
        insert(conn, ticket_id, {"is_actionable": value, "is_auto_closed": value})
    got = dict(conn.execute("SELECT ticket_id, is_actionable FROM tickets.inc").fetchall())
    assert got == {"A": True, "B": True, "C": False, "D": False, "E": None, "F": None, "G": True}


def test_typed_columns_from_a_clean_row(conn: psycopg.Connection) -> None:
    insert(
        conn,
        "WOT0715527",
        {
            "ticket_id": "WOT0715527",
            "raw_status": "In Progress",
            "normalized_status": "in_progress",
            "bucket": "pending",
            "is_actionable": "true",
            "service_type": "inc",
            "cluster": " Quarry Road ",
            "region": "Nairobi East",
            "location_name": "NW_KAYOLE_JUNCTION_FDT3",
            "assigned_team": "East Team 2",
            "owner": "j.mwangi",
            "sla_status": "Compliant",
            "mttr": "5.75",
            "created_at_service": "2026-06-13 09:41:00",
            "closed_at": None,
        },
    )
    assert row(
        conn,
        "WOT0715527",
        "raw_status, normalized_status, bucket, is_actionable, cluster, region, owner, mttr, created_at_service, closed_at",
    ) == (
        "IN PROGRESS",
        "in_progress",
        "pending",
        True,
        "Quarry Road",
        "nairobi east",
        "j.mwangi",
        345,
        datetime(2026, 6, 13, 9, 41, tzinfo=EAT),
        None,
    )


def add_location(conn: psycopg.Connection, name: str, lat: float, lon: float) -> None:
    conn.execute(
        "INSERT INTO tickets.geo_locations (location_key, location_name, latitude, longitude) "
        "VALUES (tickets.place_key(%s), %s, %s, %s)",
        (name, name, lat, lon),
    )


def add_cluster(conn: psycopg.Connection, name: str, lat: float, lon: float) -> None:
    conn.execute(
        "INSERT INTO tickets.geo_clusters (cluster_key, cluster, latitude, longitude) "
        "VALUES (tickets.place_key(%s), %s, %s, %s)",
        (name, name, lat, lon),
    )


def test_geometry_precedence_feed_location_cluster_none(conn: psycopg.Connection) -> None:
    add_location(conn, "NW_KAYOLE_JUNCTION_FDT3", -1.2750, 36.9120)
    add_cluster(conn, "Kayole", -1.2700, 36.9000)
    base = {"location_name": "NW_KAYOLE_JUNCTION_FDT3", "cluster": "KAYOLE"}
    insert(conn, "FEED", {**base, "latitude": "-1.3", "longitude": "36.8"})
    insert(conn, "LOC", base)
    insert(conn, "CLU", {**base, "location_name": "somewhere unknown"})
    insert(conn, "NONE", {"location_name": "x", "cluster": "y"})
    insert(conn, "ZERO", {"latitude": "0", "longitude": "0", "cluster": "y"})
    got = {
        r[0]: r[1:]
        for r in conn.execute("SELECT ticket_id, geo_source, ST_Y(geom), ST_X(geom) FROM tickets.inc").fetchall()
    }
    assert got == {
        "FEED": ("feed", pytest.approx(-1.3), pytest.approx(36.8)),
        "LOC": ("location", pytest.approx(-1.275), pytest.approx(36.912)),
        "CLU": ("cluster", pytest.approx(-1.27), pytest.approx(36.9)),
        "NONE": (None, None, None),
        "ZERO": (None, None, None),
    }


def test_moving_a_ticket_re_resolves_its_geometry(conn: psycopg.Connection) -> None:
    add_cluster(conn, "Umoja", -1.28, 36.89)
    insert(conn, "T1", {"location_name": "Umoja Market", "cluster": "Nowhere", "status": "open"})
    assert row(conn, "T1", "geo_source") == (None,)
    conn.execute("""UPDATE tickets.inc SET raw = raw || '{"status": "closed"}' WHERE ticket_id = 'T1'""")
    assert row(conn, "T1", "geo_source") == (None,)
    conn.execute("""UPDATE tickets.inc SET raw = raw || '{"cluster": "UMOJA"}' WHERE ticket_id = 'T1'""")
    assert row(conn, "T1", "geo_source") == ("cluster",)


def test_refresh_geometry_after_the_gazetteer_changes(conn: psycopg.Connection) -> None:
    insert(conn, "T1", {"location_name": "Umoja Market", "cluster": "Umoja"})
    insert(conn, "T2", {"location_name": "Kayole Stage", "cluster": "Kayole"})
    add_cluster(conn, "Umoja", -1.28, 36.89)
    add_cluster(conn, "Kayole", -1.27, 36.91)
    assert conn.execute("SELECT tickets.refresh_geometry(NULL, ARRAY['umoja'])").fetchone() == (1,)
    assert row(conn, "T1", "geo_source") == ("cluster",)
    assert row(conn, "T2", "geo_source") == (None,)
    add_location(conn, "Umoja Market", -1.281, 36.891)
    assert conn.execute("SELECT tickets.refresh_geometry()").fetchone() == (2,)
    assert row(conn, "T1", "geo_source") == ("location",)
    assert row(conn, "T2", "geo_source") == ("cluster",)
    assert conn.execute("SELECT tickets.refresh_geometry()").fetchone() == (0,)


def test_fn_tickets_for_map_geojson_and_summary(conn: psycopg.Connection) -> None:
    add_cluster(conn, "Pipeline", -1.31, 36.90)
    insert(conn, "OPEN1", {"is_actionable": "true", "cluster": "Pipeline", "normalized_status": "open"})
    insert(conn, "OPEN2", {"is_actionable": "TRUE", "cluster": "Nowhere"})
    insert(conn, "CLOSED", {"is_actionable": "false", "cluster": "Pipeline"})
    conn.execute(
        "INSERT INTO tickets.import_meta (dataset, metadata) VALUES ('inc', %s)",
        (Jsonb({"source_max_key": "automations/inc/changes/2026-06-15T06-00-00.csv"}),),
    )
    payload = conn.execute("SELECT reporting.fn_tickets_for_map()").fetchone()[0]
    assert payload["type"] == "FeatureCollection"
    assert [f["id"] for f in payload["features"]] == ["OPEN1"]
    feature = payload["features"][0]
    assert feature["geometry"] == {"type": "Point", "coordinates": [36.9, -1.31]}
    assert feature["properties"]["geo_source"] == "cluster"
    summary = payload["summary"]
    assert {k: summary[k] for k in ("open_only", "tickets", "mapped", "unmapped")} == {
        "open_only": True,
        "tickets": 2,
        "mapped": 1,
        "unmapped": 1,
    }
    assert summary["freshness"]["source_max_key"].endswith("2026-06-15T06-00-00.csv")
    everything = conn.execute("SELECT reporting.fn_tickets_for_map(false)").fetchone()[0]
    assert [f["id"] for f in everything["features"]] == ["CLOSED", "OPEN1"]
    assert everything["summary"]["by_geo_source"] == {"feed": 0, "location": 0, "cluster": 2, "none": 1}
    json.dumps(everything)  # plain JSON all the way down


def test_latitude_longitude_from_feed_else_geometry(conn: psycopg.Connection) -> None:
    add_location(conn, "NW_UMOJA_FDT1", -1.2833, 36.8950)
    insert(conn, "FEED", {"latitude": "-1.30", "longitude": "36.80", "location_name": "NW_UMOJA_FDT1"})
    insert(conn, "LOC", {"location_name": "NW_UMOJA_FDT1"})
    insert(conn, "HALF", {"latitude": "-1.30", "location_name": "NW_UMOJA_FDT1"})
    insert(conn, "NONE", {"latitude": "0", "longitude": "0"})
    got = {r[0]: r[1:] for r in conn.execute("SELECT ticket_id, latitude, longitude FROM tickets.inc").fetchall()}
    assert got == {
        "FEED": (pytest.approx(-1.30), pytest.approx(36.80)),
        "LOC": (pytest.approx(-1.2833), pytest.approx(36.8950)),
        "HALF": (pytest.approx(-1.2833), pytest.approx(36.8950)),
        "NONE": (None, None),
    }


def test_latitude_longitude_follow_a_re_resolution(conn: psycopg.Connection) -> None:
    insert(conn, "T1", {"location_name": "Umoja Market"})
    assert row(conn, "T1", "latitude, longitude, geog") == (None, None, None)
    add_location(conn, "Umoja Market", -1.2833, 36.8950)
    conn.execute("SELECT tickets.refresh_geometry()")
    assert row(conn, "T1", "latitude, longitude") == (pytest.approx(-1.2833), pytest.approx(36.8950))


def test_geography_gives_metres_and_radius_search(conn: psycopg.Connection) -> None:
    insert(conn, "A", {"latitude": "-1.2833", "longitude": "36.8167"})
    insert(conn, "B", {"latitude": "-1.2923", "longitude": "36.8167"})  # ~1 km south
    insert(conn, "FAR", {"latitude": "-4.0435", "longitude": "39.6682"})  # Mombasa
    insert(conn, "NONE", {})
    metres = conn.execute(
        "SELECT ST_Distance(a.geog, b.geog) FROM tickets.inc a, tickets.inc b "
        "WHERE a.ticket_id = 'A' AND b.ticket_id = 'B'"
    ).fetchone()[0]
    assert 990 < metres < 1005
    near = conn.execute(
        "SELECT ticket_id FROM tickets.inc WHERE ST_DWithin(geog, "
        "ST_MakePoint(36.8167, -1.2833)::geography, 2000) ORDER BY ticket_id"
    ).fetchall()
    assert near == [("A",), ("B",)]
    nearest = conn.execute(
        "SELECT ticket_id FROM tickets.inc WHERE geog IS NOT NULL "
        "ORDER BY geog <-> ST_MakePoint(39.6, -4.0)::geography LIMIT 1"
    ).fetchone()
    assert nearest == ("FAR",)


@pytest.mark.parametrize(
    "hours, minutes",
    [
        ("5.75", 345),
        ("0", 0),
        ("0.01", 1),
        ("0.005", 0),
        ("48", 2880),
        ("87600", 5256000),
        ("87600.01", None),
        ("-1", None),
        ("999999999999", None),
        ("#VALUE!", None),
        ("", None),
        (None, None),
    ],
)
def test_mttr_is_whole_minutes_and_absurd_values_are_null(
    conn: psycopg.Connection, hours: str | None, minutes: int | None
) -> None:
    insert(conn, "T1", {"mttr": hours})
    assert row(conn, "T1", "mttr") == (minutes,)


def test_single_valued_columns_are_dropped_and_kept_in_raw(conn: psycopg.Connection) -> None:
    columns = {
        r[0]
        for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'tickets' AND table_name = 'inc'"
        ).fetchall()
    }
    assert not columns & {"is_alarm", "is_auto_created", "is_auto_closed", "service_type"}
    assert {"latitude", "longitude", "geog", "mttr"} <= columns
    insert(conn, "T1", {"service_type": "inc", "is_auto_closed": "true"})
    assert row(conn, "T1", "raw ->> 'service_type', raw ->> 'is_auto_closed'") == ("inc", "true")
