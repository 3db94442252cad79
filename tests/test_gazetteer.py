"""The gazetteer cache in PostGIS: which rows place tickets, cluster aliases, what saving may overwrite."""

from __future__ import annotations

import psycopg
import pytest

from tests.geo_tools import KAYOLE, QUARRY_ROAD, add_ticket


def add_location(
    conn: psycopg.Connection,
    key: str,
    lat: float | None,
    lon: float | None,
    status: str = "ok",
    verified: bool = False,
    cluster_key: str = "kayole",
) -> None:
    conn.execute(
        "INSERT INTO tickets.geo_locations (location_key, location_name, cluster_key, latitude, "
        "longitude, status, verified) VALUES (tickets.place_key(%s), %s, %s, %s, %s, %s, %s)",
        (key, key, cluster_key, lat, lon, status, verified),
    )


def add_cluster(conn: psycopg.Connection, key: str, point: tuple[float, float], status: str = "ok") -> None:
    conn.execute(
        "INSERT INTO tickets.geo_clusters (cluster_key, cluster, latitude, longitude, status) "
        "VALUES (tickets.place_key(%s), %s, %s, %s, %s)",
        (key, key, *point, status),
    )


def source(conn: psycopg.Connection, ticket_id: str) -> str | None:
    row = conn.execute("SELECT geo_source FROM tickets.inc WHERE ticket_id = %s", (ticket_id,)).fetchone()
    assert row is not None
    return row[0]


@pytest.mark.parametrize("status", ["rejected", "not_found", "error"])
def test_only_ok_rows_put_a_ticket_on_the_map(conn: psycopg.Connection, status: str) -> None:
    add_cluster(conn, "Kayole", KAYOLE, status)
    add_location(conn, "NW_KAYOLE_JUNCTION_FDT3", -0.09, 34.77, status)
    add_ticket(conn, "T1", "Kayole", "NW_KAYOLE_JUNCTION_FDT3")
    assert source(conn, "T1") is None
    conn.execute("UPDATE tickets.geo_clusters SET status = 'ok'")
    conn.execute("SELECT tickets.refresh_geometry(NULL, ARRAY['kayole'])")
    assert source(conn, "T1") == "cluster"


def test_rows_without_a_status_keep_working_as_before(conn: psycopg.Connection) -> None:
    conn.execute(
        "INSERT INTO tickets.geo_clusters (cluster_key, cluster, latitude, longitude) "
        "VALUES ('kayole', 'Kayole', -1.276, 36.914)"
    )
    add_ticket(conn, "T1", "Kayole", "somewhere")
    assert source(conn, "T1") == "cluster"


@pytest.mark.parametrize(
    "values, constraint",
    [
        ("(NULL, NULL, 'ok', false)", "geo_locations_ok_has_point_check"),
        ("(-1.2, NULL, 'not_found', false)", "geo_locations_point_pair_check"),
        ("(-1.2, 36.9, 'rejected', true)", "geo_locations_verified_point_is_ok_check"),
        ("(-1.2, 36.9, 'maybe', false)", "geo_locations_status_check"),
    ],
)
def test_rows_that_cannot_mean_anything_are_refused(conn: psycopg.Connection, values: str, constraint: str) -> None:
    with pytest.raises(psycopg.errors.CheckViolation, match=constraint):
        conn.execute(
            "INSERT INTO tickets.geo_locations (location_key, location_name, latitude, longitude, "
            f"status, verified) VALUES ('x', 'x', {values[1:-1]})"
        )


def test_cluster_aliases_place_coded_clusters(conn: psycopg.Connection) -> None:
    add_cluster(conn, "Quarry Road", QUARRY_ROAD)
    add_cluster(conn, "Kayole", KAYOLE)
    add_ticket(conn, "T1", "QOA", None)
    add_ticket(conn, "T2", "qoa ", None)
    add_ticket(conn, "T3", "KYL", None)
    point = "SELECT round(ST_Y(geom)::numeric, 4)::float FROM tickets.inc WHERE ticket_id = %s"
    assert conn.execute(point, ("T1",)).fetchone() == (QUARRY_ROAD[0],)
    assert source(conn, "T2") == "cluster"
    assert source(conn, "T3") is None
    # Operators add codes as rows; tickets already loaded move at once.
    conn.execute(
        "INSERT INTO tickets.cluster_aliases (alias_key, cluster_key) "
        "VALUES (tickets.place_key('KYL'), tickets.place_key('Kayole'))"
    )
    assert conn.execute(point, ("T3",)).fetchone() == (KAYOLE[0],)
    conn.execute("DELETE FROM tickets.cluster_aliases WHERE alias_key = 'qoa'")
    assert source(conn, "T1") is None


def test_refreshing_a_cluster_reaches_its_aliases(conn: psycopg.Connection) -> None:
    add_ticket(conn, "T1", "PTMP", None)
    add_ticket(conn, "T2", "Pipeline", None)
    conn.execute(
        "INSERT INTO tickets.geo_clusters (cluster_key, cluster, latitude, longitude) "
        "VALUES ('pipeline', 'Pipeline', -1.318, 36.896)"
    )
    assert conn.execute("SELECT tickets.refresh_geometry(NULL, ARRAY['pipeline'])").fetchone() == (2,)
    assert (source(conn, "T1"), source(conn, "T2")) == ("cluster", "cluster")


def test_alias_keys_must_be_place_keys(conn: psycopg.Connection) -> None:
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("INSERT INTO tickets.cluster_aliases (alias_key, cluster_key) VALUES ('KYL', 'kayole')")
