"""Test helpers for geocoding: seeded tickets, provider replies at given points, settings."""

from __future__ import annotations

import os
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from fleettickets.settings import Settings
from tests.geocode_server import KEYS, FakeGeocodeServer, Reply, locationiq_hit, opencage_hit, sample_reply

# Cluster centroids and one location near each (lat, lon).
KAYOLE = (-1.2760, 36.9140)
QUARRY_ROAD = (-1.2745, 36.8420)
PIPELINE = (-1.3180, 36.8960)
KAYOLE_JUNCTION = (-1.2761094, 36.9139211)
KISUMU = (-0.0917, 34.7680)  # a same-named place in the wrong city, ~300 km away

CLUSTER_QUERIES = {
    "Kayole, Nairobi East, Kenya": KAYOLE,
    "Quarry Road, Nairobi East, Kenya": QUARRY_ROAD,
    "Pipeline, Nairobi East, Kenya": PIPELINE,
}
JUNCTION_QUERY = "Kayole Junction, Kayole, Nairobi East, Kenya"

# ticket_id: (cluster, location_name, open)
TICKETS = {
    "WOT1": ("Kayole", "NW_KAYOLE_JUNCTION_FDT3", True),
    "WOT2": ("KAYOLE", "MNT_KAYOLE_JUNCTION_2", True),  # same place, another code
    "WOT3": ("QOA", "ADR_MNT_GIKOMBA_MKT", True),  # QOA = Quarry Road
    "WOT4": ("Kayole", "NW_FDT3", True),  # nothing left to search for
    "WOT5": ("Kayole", "NW_UMOJA_MARKET", False),  # closed: no precise point needed
    "WOT6": ("PTMP", "SDUS_PIPELINE_STG", True),
}


def add_ticket(
    conn: psycopg.Connection,
    ticket_id: str,
    cluster: str | None,
    location_name: str | None,
    is_open: bool = True,
    region: str = "Nairobi East",
) -> None:
    raw = {
        "ticket_id": ticket_id,
        "cluster": cluster,
        "location_name": location_name,
        "region": region.lower(),
        "is_actionable": "true" if is_open else "false",
    }
    conn.execute("INSERT INTO tickets.inc (ticket_id, raw) VALUES (%s, %s)", (ticket_id, Jsonb(raw)))


def seed_tickets(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for ticket_id, (cluster, location, is_open) in TICKETS.items():
            add_ticket(conn, ticket_id, cluster, location, is_open)


def hit(provider: str, point: tuple[float, float], name: str = "somewhere") -> Reply:
    if provider == "opencage":
        return opencage_hit(point[0], point[1], name)
    return locationiq_hit(point[0], point[1], name)


def quota_spent(provider: str) -> Reply:
    if provider == "opencage":
        return sample_reply("opencage_error_402", 402)
    return sample_reply("locationiq_error_rate_limited_day", 429)


def answer_clusters(server: FakeGeocodeServer) -> None:
    for query, point in CLUSTER_QUERIES.items():
        server.answer(query, hit(server.provider, point, query))


def settings_for(url: str, server: FakeGeocodeServer, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": url,
        "geocoder_provider": server.provider,
        "geocoder_api_key": KEYS.get(server.provider),
        "geocoder_base_url": server.url,
        "geocoder_requests_per_second": 200.0,
    }
    values.update(extra)
    return Settings(**values)


def geo_env(url: str, server: FakeGeocodeServer, **extra: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABASE_URL": url,
        "GEOCODER_PROVIDER": server.provider,
        "GEOCODER_API_KEY": KEYS.get(server.provider, ""),
        "GEOCODER_BASE_URL": server.url,
        "GEOCODER_REQUESTS_PER_SECOND": "200",
    }
    env.update(extra)
    return env


def placed(url: str) -> dict[str, tuple[Any, ...]]:
    """ticket_id -> (geo_source, lat, lon) rounded for comparison."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT ticket_id, geo_source, round(ST_Y(geom)::numeric, 4)::float, "
            "round(ST_X(geom)::numeric, 4)::float FROM tickets.inc ORDER BY 1"
        ).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def rows(url: str, table: str, columns: str) -> dict[str, tuple[Any, ...]]:
    key = "cluster_key" if table == "geo_clusters" else "location_key"
    with psycopg.connect(url) as conn:
        found = conn.execute(f"SELECT {key}, {columns} FROM tickets.{table} ORDER BY 1").fetchall()
    return {r[0]: tuple(r[1:]) for r in found}
