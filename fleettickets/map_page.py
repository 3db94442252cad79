"""The `map` command: one self-contained HTML page of the dashboard payload, the gazetteers and the backlog.

The page carries everything it needs (Leaflet, its own script and style, the
data as JSON), so an operator opens it from disk with no server and no
network; only the background tiles come from the network, and without them
the points still draw on a plain background.
"""

from __future__ import annotations

import html
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from fleettickets import clock, defaults, trends_chart
from fleettickets.dashboard import DEFAULT_MAX_FEATURES, read_dashboard
from fleettickets.db import connect
from fleettickets.errors import FleetTicketsError
from fleettickets.settings import Settings

LEAFLET_VERSION = "1.9.4"
DEFAULT_TILES = defaults.DEFAULT_TILES
DEFAULT_ATTRIBUTION = defaults.DEFAULT_ATTRIBUTION
GUARD_KM = 25  # the geocoding guard around each cluster point (docs/geocoding.md)
NO_TILES = ("", "none")

CLUSTERS_SQL = """
SELECT cluster_key AS key, cluster AS name, region, status, latitude AS lat, longitude AS lon,
       verified, display_name, query
  FROM tickets.geo_clusters
 WHERE %(cluster)s::text IS NULL OR cluster_key = tickets.cluster_key_of(%(cluster)s)
 ORDER BY cluster_key
"""

LOCATIONS_SQL = """
SELECT l.location_key AS key, l.location_name AS name, l.cluster_key, l.region, l.status,
       l.latitude AS lat, l.longitude AS lon, l.distance_km, l.verified, l.display_name, l.query,
       c.latitude AS cluster_lat, c.longitude AS cluster_lon
  FROM tickets.geo_locations l
  LEFT JOIN tickets.geo_clusters c ON c.cluster_key = l.cluster_key
 WHERE %(cluster)s::text IS NULL OR l.cluster_key = tickets.cluster_key_of(%(cluster)s)
 ORDER BY l.location_key
"""

# Every daily row up to the window's last day: the trend, whatever the window.
BACKLOG_SQL = """
SELECT snapshot_date, open_total, open_breached, closed_today
  FROM tickets.inc_daily_snapshot
 WHERE snapshot_date <= %(until)s
 ORDER BY snapshot_date
"""

CONTENT_SQL = "SELECT max(source_updated_at) FROM tickets.inc"

# The trends section: the same functions as `fleettickets trends` and `teams`.
TRENDS_SQL = """
SELECT reporting.fn_inc_trends(p_from => %(first)s, p_to => %(last)s, p_grain => %(grain)s,
                               p_cluster => %(cluster)s, p_now => %(now)s),
       reporting.fn_team_closures(p_from => %(first)s, p_to => %(last)s, p_cluster => %(cluster)s,
                                  p_now => %(now)s)
"""


@dataclass(frozen=True)
class MapResult:
    path: Path
    bytes_written: int
    open_features: int
    closed_features: int
    backlog_days: int


def write_map(
    settings: Settings,
    out: Path,
    *,
    cluster: str | None = None,
    status: str | None = None,
    window: str = "today",
    date_from: date | None = None,
    date_to: date | None = None,
    max_features: int | None = DEFAULT_MAX_FEATURES,
    tiles: str | None = DEFAULT_TILES,
    attribution: str = DEFAULT_ATTRIBUTION,
    now: datetime | None = None,
) -> MapResult:
    """Write the page for these filters (the same as `fleettickets dashboard`) to `out`."""
    with connect(settings, autocommit=True) as conn:
        # One snapshot for every read, so the map, the chart and the trends agree.
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.transaction():
            data = read_map_data(
                conn,
                cluster=cluster,
                status=status,
                window=window,
                date_from=date_from,
                date_to=date_to,
                max_features=max_features,
                now=now or clock.now(),
            )
    page = render_page(data, tiles=tiles, attribution=attribution)
    size = _write_atomically(out, page)
    return MapResult(
        path=out,
        bytes_written=size,
        open_features=len(data["payload"]["open"]["features"]),
        closed_features=len(data["payload"]["closed"]["features"]),
        backlog_days=len(data["backlog"]),
    )


def read_map_data(conn: psycopg.Connection, **arguments: Any) -> dict[str, Any]:
    """The dashboard payload plus what only the map shows: gazetteers, daily backlog, trends, content lag."""
    payload = read_dashboard(conn, **arguments)
    cluster = (arguments.get("cluster") or "").strip() or None
    span = trends_chart.trend_range(
        date.fromisoformat(payload["window"]["from"]), date.fromisoformat(payload["window"]["to"])
    )
    with conn.cursor(row_factory=dict_row) as cur:
        clusters = cur.execute(CLUSTERS_SQL, {"cluster": cluster}).fetchall()
        locations = cur.execute(LOCATIONS_SQL, {"cluster": cluster}).fetchall()
        backlog = cur.execute(BACKLOG_SQL, {"until": payload["window"]["to"]}).fetchall()
        content = cur.execute(CONTENT_SQL).fetchone()
        trends = cur.execute(
            TRENDS_SQL,
            {"first": span.first, "last": span.last, "grain": span.grain, "cluster": cluster, "now": arguments["now"]},
        ).fetchone()
    newest_content = content["max"] if content else None
    assert trends is not None
    return {
        "payload": payload,
        "gazetteer": {"clusters": clusters, "locations": locations},
        "backlog": backlog,
        "trends": trends["fn_inc_trends"],
        "teams": trends["fn_team_closures"],
        "content_lag_hours": _content_lag(payload["freshness"]["source_max_ts"], newest_content),
        "guard_km": GUARD_KM,
    }


def _content_lag(newest_file: str | None, newest_content: datetime | None) -> float | None:
    # The feed's content trails its file timestamps (the upstream export lags).
    if not newest_file or newest_content is None:
        return None
    return round((datetime.fromisoformat(newest_file) - newest_content).total_seconds() / 3600, 1)


def render_page(data: dict[str, Any], *, tiles: str | None, attribution: str) -> str:
    payload = data["payload"]
    tile_url = None if tiles is None or tiles.strip().lower() in NO_TILES else tiles.strip()
    embedded = {**data, "tiles": {"url": tile_url, "attribution": attribution}}
    title = f"fleettickets map, {payload['window']['from']} to {payload['window']['to']}"
    return _TEMPLATE.format(
        title=html.escape(title),
        leaflet_css=_asset(f"vendor/leaflet-{LEAFLET_VERSION}/leaflet.css"),
        page_css=_asset("assets/map.css"),
        header=render_header(data),
        unplaced=render_unplaced(data["gazetteer"]),
        chart=render_chart(data["backlog"]),
        trends_heading=html.escape(_trends_heading(data["trends"])),
        trends=trends_chart.render_trends(data["trends"], data["teams"]),
        data=script_json(embedded),
        leaflet_js=_asset(f"vendor/leaflet-{LEAFLET_VERSION}/leaflet.js"),
        page_js=_asset("assets/map.js"),
    )


def _trends_heading(trends: dict[str, Any]) -> str:
    per = {"day": "EAT day", "week": "ISO week", "month": "month"}[trends["grain"]]
    scope = f"cluster {trends['cluster']}" if trends["cluster"] else "all clusters"
    return f"Trends per {per}, {trends['from']} to {trends['to']} ({scope}, every status)"


def script_json(value: Any) -> str:
    """JSON safe inside a <script> element: no '<' at all, so no '</script>' or '<!--'."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default)
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(clock.EAT).isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def render_header(data: dict[str, Any]) -> str:
    payload = data["payload"]
    metrics, window, fresh = payload["metrics"], payload["window"], payload["freshness"]
    sla = metrics["open_by_sla_state"]
    unmapped = payload["open"]["unmapped"] + payload["closed"]["unmapped"]
    over_limit = payload["open"]["over_limit"] + payload["closed"]["over_limit"]
    filters = [
        f"{name} {value}" for name, value in payload["filters"].items() if name != "max_features" and value is not None
    ]
    lag = data["content_lag_hours"]
    newest = fresh["source_max_key"] or "no file applied yet"
    counts = [
        _count("open_total", "open", metrics["open_total"]),
        *(_count(state, state.replace("_", " "), sla[state]) for state in ("within", "at_risk", "breached", "unknown")),
        _count("closed_in_window", "closed in window", metrics["closed_in_window"]),
        _count("unmapped", "unmapped", unmapped),
        _count("over_limit", "over limit", over_limit),
    ]
    ingested = f", ingested {_e(fresh['last_ingest_at'])}" if fresh["last_ingest_at"] else ""
    lag_text = "unknown" if lag is None else f"{lag} h"
    filter_text = "; " + ", ".join(filters) if filters else ""
    return (
        f'<div class="when"><b>{_e(window["name"])}</b> {_e(window["from"])} to {_e(window["to"])} EAT'
        f"{_e(filter_text)}; as of {_e(payload['generated_at'])}</div>\n"
        f'<div class="fresh">newest file <span id="newest-file">{_e(newest)}</span>{ingested}'
        f'; content lag <span id="content-lag">{lag_text}</span></div>\n'
        f'<div class="counts">{"".join(counts)}</div>'
    )


def _count(key: str, label: str, value: int) -> str:
    return f'<span class="count {key}"><b data-count="{key}">{value}</b> {label}</span>'


def render_unplaced(gazetteer: dict[str, list[dict[str, Any]]]) -> str:
    """The places geocoding could not put on the map, listed beside it (they have no point to draw)."""
    rows = [
        (kind, place)
        for kind, places in (("cluster", gazetteer["clusters"]), ("location", gazetteer["locations"]))
        for place in places
        if place["status"] in ("not_found", "error")
    ]
    if not rows:
        return '<p class="none">Every gazetteer place has an answer.</p>'
    items = "".join(_unplaced_item(kind, place) for kind, place in rows)
    return f'<ul id="unplaced-list">{items}</ul>'


def _unplaced_item(kind: str, place: dict[str, Any]) -> str:
    query = f"<br><small>{_e(place['query'])}</small>" if place.get("query") else ""
    status = place["status"]
    return (
        f'<li data-status="{_e(status)}"><b>{_e(place["name"])}</b> '
        f'<span class="kind">{kind}, {_e(status.replace("_", " "))}</span>{query}</li>'
    )


CHART_W, CHART_H = 960, 240
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 56, 16, 16, 40


def render_chart(backlog: list[dict[str, Any]]) -> str:
    """Open backlog (line, one point per day) and closures per day (bars), as inline SVG."""
    if not backlog:
        return '<p class="none">No daily backlog rows yet (tickets.inc_daily_snapshot is empty).</p>'
    top = max(max(row["open_total"], row["closed_today"]) for row in backlog) or 1
    width, height = CHART_W - _PAD_L - _PAD_R, CHART_H - _PAD_T - _PAD_B
    step = width / len(backlog)

    def x(i: int) -> float:
        return _PAD_L + step * (i + 0.5)

    def y(value: int) -> float:
        return _PAD_T + height * (1 - value / top)

    bar = min(24.0, max(1.0, step * 0.6))
    bars, points, dots = [], [], []
    for i, row in enumerate(backlog):
        day = row["snapshot_date"].isoformat()
        bars.append(
            f'<rect class="closure-bar" x="{x(i) - bar / 2:.1f}" y="{y(row["closed_today"]):.1f}" '
            f'width="{bar:.1f}" height="{y(0) - y(row["closed_today"]):.1f}">'
            f"<title>{day}: {row['closed_today']} closed</title></rect>"
        )
        points.append(f"{x(i):.1f},{y(row['open_total']):.1f}")
        dots.append(
            f'<circle class="backlog-point" data-day="{day}" data-open="{row["open_total"]}" '
            f'cx="{x(i):.1f}" cy="{y(row["open_total"]):.1f}" r="3">'
            f"<title>{day}: {row['open_total']} open, {row['open_breached']} breached</title></circle>"
        )
    first, last = backlog[0]["snapshot_date"].isoformat(), backlog[-1]["snapshot_date"].isoformat()
    axes = (
        f'<line class="axis" x1="{_PAD_L}" y1="{y(0):.1f}" x2="{CHART_W - _PAD_R}" y2="{y(0):.1f}"/>'
        f'<line class="axis" x1="{_PAD_L}" y1="{_PAD_T}" x2="{_PAD_L}" y2="{y(0):.1f}"/>'
        f'<text x="{_PAD_L - 6}" y="{_PAD_T + 4}" text-anchor="end">{top}</text>'
        f'<text x="{_PAD_L - 6}" y="{y(0):.1f}" text-anchor="end">0</text>'
        f'<text x="{_PAD_L}" y="{CHART_H - 20}">{first}</text>'
        f'<text x="{CHART_W - _PAD_R}" y="{CHART_H - 20}" text-anchor="end">{last}</text>'
        f'<g class="legend" transform="translate({_PAD_L + 8},{CHART_H - 6})">'
        f'<line class="backlog-line" x1="0" y1="-4" x2="18" y2="-4"/><text x="24" y="0">open at end of day</text>'
        f'<rect class="closure-bar" x="170" y="-9" width="12" height="9"/><text x="188" y="0">closed that day</text></g>'
    )
    return (
        f'<svg id="backlog-chart" viewBox="0 0 {CHART_W} {CHART_H}" width="100%" role="img" '
        f'aria-label="Open backlog and closures per EAT day, {first} to {last}">{axes}{"".join(bars)}'
        f'<polyline class="backlog-line" points="{" ".join(points)}"/>{"".join(dots)}</svg>'
    )


def _e(value: Any) -> str:
    return html.escape(str(value))


def _asset(name: str) -> str:
    return resources.files("fleettickets").joinpath(name).read_text(encoding="utf-8")


def _write_atomically(out: Path, text: str) -> int:
    """Write beside the target and rename, so a reader never sees half a page."""
    data = text.encode("utf-8")
    folder = out.parent if str(out.parent) else Path(".")
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{out.name}.", dir=folder)
    except OSError as exc:
        raise FleetTicketsError(f"cannot write {out}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temp, 0o644)
        os.replace(temp, out)
    except OSError as exc:
        Path(temp).unlink(missing_ok=True)
        raise FleetTicketsError(f"cannot write {out}: {exc.strerror}") from None
    return len(data)


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{leaflet_css}</style>
<style>{page_css}</style>
</head>
<body>
<header id="summary">
<h1>{title}</h1>
{header}
</header>
<main>
<div id="map" aria-label="map"></div>
<aside id="unplaced">
<h2>Not placed by geocoding</h2>
{unplaced}
</aside>
</main>
<section id="backlog">
<h2>Open backlog and closures per EAT day (all tickets)</h2>
{chart}
</section>
<section id="trends">
<h2>{trends_heading}</h2>
{trends}
</section>
<script type="application/json" id="map-data">{data}</script>
<script>{leaflet_js}</script>
<script>{page_js}</script>
</body>
</html>
"""
