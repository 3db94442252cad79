"""The gazetteer cache in the database: which places need an answer, saving answers, re-placing tickets."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import psycopg
from psycopg import sql

from fleettickets.geocoding.placenames import clean_location_name, geocode_query
from fleettickets.geocoding.tables import TABLES, Kind, refresh_geometry

logger = logging.getLogger(__name__)

# A location answer farther than this from its cluster centroid is another
# place with the same name (a wrong city), never a point for the map.
MAX_DISTANCE_KM = 25.0

# Rows that still want an answer: none yet, a failed lookup, or a negative answer
# that is old enough (or that the operator asked to retry). Verified rows never.
_NEEDS_WORK = sql.SQL("""
    g.status IS NULL
    OR (NOT g.verified AND (
        g.status = 'error'
        OR (g.status IN ('not_found', 'rejected')
            AND (%(retry_failed)s
                 OR coalesce(g.fetched_at, g.updated_at)
                    < now() - %(retry_days)s * interval '1 day'))))
""")

CLUSTERS_SQL = sql.SQL("""
WITH t AS (
    SELECT tickets.cluster_key_of(cluster) AS key, cluster, region, is_actionable
      FROM tickets.inc WHERE cluster IS NOT NULL
), c AS (
    SELECT key,
           coalesce(mode() WITHIN GROUP (ORDER BY cluster)
                        FILTER (WHERE tickets.place_key(cluster) = key), key) AS name,
           mode() WITHIN GROUP (ORDER BY region) AS region,
           count(*) FILTER (WHERE is_actionable) AS open_tickets,
           count(*) AS tickets
      FROM t WHERE key IS NOT NULL GROUP BY key
)
SELECT c.key, c.name, c.region, c.open_tickets
  FROM c LEFT JOIN tickets.geo_clusters g ON g.cluster_key = c.key
 WHERE {needs_work}
 ORDER BY c.open_tickets DESC, c.tickets DESC, c.key
""").format(needs_work=_NEEDS_WORK)

LOCATIONS_SQL = sql.SQL("""
WITH t AS (
    SELECT tickets.place_key(location_name) AS key, location_name,
           tickets.cluster_key_of(cluster) AS cluster_key, region
      FROM tickets.inc WHERE is_actionable AND location_name IS NOT NULL
), l AS (
    SELECT key,
           mode() WITHIN GROUP (ORDER BY location_name) AS name,
           mode() WITHIN GROUP (ORDER BY cluster_key) AS cluster_key,
           mode() WITHIN GROUP (ORDER BY region) AS region,
           count(*) AS open_tickets
      FROM t WHERE key IS NOT NULL GROUP BY key
)
SELECT l.key, l.name, l.region, l.open_tickets, l.cluster_key,
       coalesce(c.cluster, l.cluster_key), ST_Y(c.geom), ST_X(c.geom)
  FROM l
  LEFT JOIN tickets.geo_locations g ON g.location_key = l.key
  LEFT JOIN tickets.geo_clusters c ON c.cluster_key = l.cluster_key AND c.status = 'ok'
 WHERE {needs_work}
 ORDER BY l.open_tickets DESC, l.key
""").format(needs_work=_NEEDS_WORK)

# Earlier answers to the same query, freshest first; negative ones only while
# they are young enough to trust.
CACHED_SQL = sql.SQL("""
SELECT DISTINCT ON (g.query) g.query, g.status, g.latitude, g.longitude, g.confidence,
       g.display_name, g.provider, g.fetched_at
  FROM tickets.{table} g
 WHERE g.query = ANY(%(queries)s)
   AND (g.status = 'ok'
        OR (g.status IN ('not_found', 'rejected') AND NOT %(retry_failed)s
            AND coalesce(g.fetched_at, g.updated_at)
                > now() - %(retry_days)s * interval '1 day'))
 ORDER BY g.query, g.verified DESC, g.status = 'ok' DESC, g.fetched_at DESC NULLS LAST
""")

# The 25 km guard runs here, in the statement that stores the answer: an 'ok'
# that is too far from (or has no) cluster centroid is stored as 'rejected'.
SAVE_LOCATION_SQL = sql.SQL("""
WITH d AS (
    SELECT ST_DistanceSphere(ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326), c.geom)
           / 1000.0 AS km
      FROM (SELECT 1) one
      LEFT JOIN tickets.geo_clusters c ON c.cluster_key = %(cluster_key)s AND c.status = 'ok'
)
INSERT INTO tickets.geo_locations AS g (
    location_key, location_name, cluster_key, region, latitude, longitude, provider,
    query, status, confidence, distance_km, display_name, last_error, fetched_at, updated_at)
SELECT %(key)s, %(name)s, %(cluster_key)s, %(region)s, %(lat)s, %(lon)s, %(provider)s,
       %(query)s,
       CASE WHEN %(status)s = 'ok' AND (d.km IS NULL OR d.km > %(max_km)s)
            THEN 'rejected' ELSE %(status)s END,
       %(confidence)s, d.km, %(display_name)s, %(error)s,
       coalesce(%(fetched_at)s, now()), now()
  FROM d
{conflict}
RETURNING g.status, g.distance_km
""")

SAVE_CLUSTER_SQL = sql.SQL("""
INSERT INTO tickets.geo_clusters AS g (
    cluster_key, cluster, region, latitude, longitude, provider, query, status,
    confidence, display_name, last_error, fetched_at, updated_at)
VALUES (%(key)s, %(name)s, %(region)s, %(lat)s, %(lon)s, %(provider)s, %(query)s,
        %(status)s, %(confidence)s, %(display_name)s, %(error)s,
        coalesce(%(fetched_at)s, now()), now())
{conflict}
RETURNING g.status, NULL::double precision
""")

# An answer replaces whatever was there; a failure only notes its error, so a
# cached negative answer survives a failed retry. Verified rows: never touched.
_ANSWER_CONFLICT = sql.SQL("""
ON CONFLICT ({key}) DO UPDATE SET
    {name} = EXCLUDED.{name}, region = EXCLUDED.region,{extra}
    latitude = EXCLUDED.latitude, longitude = EXCLUDED.longitude,
    provider = EXCLUDED.provider, query = EXCLUDED.query, status = EXCLUDED.status,
    confidence = EXCLUDED.confidence, display_name = EXCLUDED.display_name,
    last_error = NULL, fetched_at = EXCLUDED.fetched_at, updated_at = now()
 WHERE NOT g.verified
""")
_ERROR_CONFLICT = sql.SQL("""
ON CONFLICT ({key}) DO UPDATE SET last_error = EXCLUDED.last_error, updated_at = now()
 WHERE NOT g.verified
""")
_SAVE_SQL = {"cluster": SAVE_CLUSTER_SQL, "location": SAVE_LOCATION_SQL}
# What an answer updates beyond the columns both tables have.
_ANSWER_EXTRA = {
    "cluster": sql.SQL(""),
    "location": sql.SQL("\n    cluster_key = EXCLUDED.cluster_key, distance_km = EXCLUDED.distance_km,"),
}


@dataclass(frozen=True)
class Place:
    """One gazetteer key that wants an answer, and the query that asks for it."""

    kind: Kind
    key: str
    name: str
    query: str
    region: str | None
    open_tickets: int
    cluster_key: str | None = None
    centroid: tuple[float, float] | None = None  # (lat, lon) of the cluster


@dataclass
class Selection:
    places: list[Place] = field(default_factory=list)
    no_place_name: list[str] = field(default_factory=list)  # nothing left to search
    no_cluster_point: list[str] = field(default_factory=list)  # no centroid to guard


@dataclass(frozen=True)
class Outcome:
    """What to store for one place: an answer ('ok'/'not_found') or an 'error'."""

    place: Place
    status: Literal["ok", "not_found", "error"]
    provider: str | None
    query: str
    latitude: float | None = None
    longitude: float | None = None
    confidence: float | None = None
    display_name: str | None = None
    error: str | None = None
    fetched_at: datetime | None = None  # None: now; a reused answer keeps its own


@dataclass
class Saved:
    statuses: Counter[str] = field(default_factory=Counter)
    kept_verified: int = 0
    tickets_moved: int = 0

    def add(self, other: Saved) -> None:
        self.statuses.update(other.statuses)
        self.kept_verified += other.kept_verified
        self.tickets_moved += other.tickets_moved


def select_places(conn: psycopg.Connection, kind: Kind, *, retry_failed: bool, retry_days: float) -> Selection:
    """The places without a usable or fresh answer, most open tickets first."""
    params = {"retry_failed": retry_failed, "retry_days": retry_days}
    selection = Selection()
    if kind == "cluster":
        for key, name, region, open_tickets in conn.execute(CLUSTERS_SQL, params):
            if name == key:  # only aliases in the feed: spell the key as a name
                name = name.title()
            query = geocode_query(name, None, region)
            selection.places.append(Place(kind, key, name, query, region, open_tickets))
        return selection
    for row in conn.execute(LOCATIONS_SQL, params):
        key, name, region, open_tickets, cluster_key, cluster, lat, lon = row
        place_name = clean_location_name(name)
        if place_name is None:
            selection.no_place_name.append(name)
        elif lat is None or lon is None:
            selection.no_cluster_point.append(name)
        else:
            query = geocode_query(place_name, cluster, region)
            selection.places.append(Place(kind, key, name, query, region, open_tickets, cluster_key, (lat, lon)))
    return selection


def cached_outcomes(
    conn: psycopg.Connection,
    places: list[Place],
    *,
    retry_failed: bool,
    retry_days: float,
) -> list[Outcome]:
    """Outcomes for the places whose query was answered before (under any key)."""
    if not places:
        return []
    table = sql.Identifier(TABLES[places[0].kind].name)
    params = {
        "queries": sorted({p.query for p in places}),
        "retry_failed": retry_failed,
        "retry_days": retry_days,
    }
    rows = conn.execute(CACHED_SQL.format(table=table), params).fetchall()
    known = {row[0]: row for row in rows}
    outcomes = []
    for place in places:
        row = known.get(place.query)
        if row is None:
            continue
        _, status, lat, lon, confidence, display_name, provider, fetched_at = row
        # A rejected answer is still the provider's point: the guard judges it
        # again against this place's cluster when it is saved.
        outcomes.append(
            Outcome(
                place,
                "not_found" if status == "not_found" else "ok",
                provider,
                place.query,
                lat,
                lon,
                confidence,
                display_name,
                None,
                fetched_at,
            )
        )
    return outcomes


def save_outcomes(conn: psycopg.Connection, outcomes: list[Outcome], max_km: float = MAX_DISTANCE_KM) -> Saved:
    """Store a batch and re-place its tickets, all in one transaction."""
    saved = Saved()
    if not outcomes:
        return saved
    kind = outcomes[0].place.kind
    answer_sql, error_sql = _save_statements(kind)
    with conn.transaction():
        for outcome in outcomes:
            statement = error_sql if outcome.status == "error" else answer_sql
            row = conn.execute(statement, _params(outcome, max_km)).fetchone()
            if row is None:
                saved.kept_verified += 1
                continue
            saved.statuses[outcome.status if outcome.status == "error" else row[0]] += 1
            _log_saved(outcome, row[0], row[1])
        keys = sorted({o.place.key for o in outcomes})
        locations, clusters = (keys, []) if kind == "location" else ([], keys)
        saved.tickets_moved = refresh_geometry(conn, locations=locations, clusters=clusters)
    return saved


def _save_statements(kind: Kind) -> tuple[sql.Composed, sql.Composed]:
    """The statements that store an answer and that note a failure, for one table."""
    table = TABLES[kind]
    key, name = sql.Identifier(table.key_column), sql.Identifier(table.name_column)
    answer = _ANSWER_CONFLICT.format(key=key, name=name, extra=_ANSWER_EXTRA[kind])
    error = _ERROR_CONFLICT.format(key=key)
    return _SAVE_SQL[kind].format(conflict=answer), _SAVE_SQL[kind].format(conflict=error)


def _params(outcome: Outcome, max_km: float) -> dict[str, object]:
    place = outcome.place
    return {
        "key": place.key,
        "name": place.name,
        "cluster_key": place.cluster_key,
        "region": place.region,
        "lat": outcome.latitude,
        "lon": outcome.longitude,
        "provider": outcome.provider,
        "query": outcome.query,
        "status": outcome.status,
        "confidence": outcome.confidence,
        "display_name": outcome.display_name,
        "error": outcome.error,
        "fetched_at": outcome.fetched_at,
        "max_km": max_km,
    }


def _log_saved(outcome: Outcome, status: str, distance_km: float | None) -> None:
    far = f" ({distance_km:.1f} km from the cluster centroid)" if distance_km else ""
    log = logger.warning if status in ("rejected", "error") else logger.debug
    log(
        "%s %s: %s%s",
        outcome.place.kind,
        outcome.place.name,
        status,
        far,
        extra={"place": outcome.place.key, "status": status, "query": outcome.query},
    )
