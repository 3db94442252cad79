"""Dispatch candidates: what reporting.fn_dispatch_candidates offers a vehicle, as plain data."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from fleettickets import clock, defaults, entry_points
from fleettickets.db import connect
from fleettickets.errors import DispatchArgumentError
from fleettickets.settings import Settings

DEFAULT_LIMIT = defaults.DEFAULT_DISPATCH_LIMIT

DISPATCH_SQL = """
SELECT reporting.fn_dispatch_candidates(
    p_lng => %(lng)s, p_lat => %(lat)s, p_limit => %(limit)s, p_within_m => %(within_m)s,
    p_cluster => %(cluster)s, p_team => %(team)s, p_order => %(order)s, p_now => %(now)s)
"""

# The function's messages name its SQL parameters; an operator types options.
_OPTION_NAMES = {
    "p_lat": "--near latitude",
    "p_lng": "--near longitude",
    "p_limit": "--limit",
    "p_within_m": "--within-km",
    "p_order": "--order",
}


def parse_near(text: str) -> tuple[float, float]:
    """`LAT,LNG` in decimal degrees, as a phone or a map copies them."""
    parts = [p.strip() for p in text.split(",")]
    try:
        if len(parts) != 2:
            raise ValueError
        lat, lng = float(parts[0]), float(parts[1])
    except ValueError:
        raise DispatchArgumentError(
            f"--near {text!r} is not LAT,LNG: give two decimal numbers, latitude first, e.g. --near -1.2921,36.8219"
        ) from None
    return lat, lng


def within_metres(km: float | None) -> int | None:
    """A radius in km as the whole metres the function takes (at least 1)."""
    if km is None:
        return None
    if not km > 0:
        raise DispatchArgumentError(f"--within-km must be more than 0 (got {km:g})")
    return max(1, round(km * 1000))


def fetch_candidates(
    settings: Settings,
    *,
    lat: float,
    lng: float,
    limit: int = DEFAULT_LIMIT,
    within_m: int | None = None,
    cluster: str | None = None,
    team: str | None = None,
    order: str = "distance",
    now: datetime | None = None,
) -> dict[str, Any]:
    """The dispatch payload exactly as the function returns it, parsed into a dict.

    Hours open and SLA states are as of `now` (default: the clock).
    """
    with connect(settings, autocommit=True) as conn:
        return read_candidates(
            conn,
            lat=lat,
            lng=lng,
            limit=limit,
            within_m=within_m,
            cluster=cluster,
            team=team,
            order=order,
            now=now or clock.now(),
        )


def read_candidates(conn: psycopg.Connection, **arguments: Any) -> dict[str, Any]:
    payload: dict[str, Any] = entry_points.call(
        conn,
        DISPATCH_SQL,
        arguments,
        function="reporting.fn_dispatch_candidates",
        option_names=_OPTION_NAMES,
        refusal=DispatchArgumentError,
    )
    return payload


def text_table(payload: dict[str, Any]) -> str:
    """One line per candidate, nearest (or most urgent) first, then the unplaced count."""
    lines = [f"{'ticket':<14}{'metres':>8}  {'sla':<9}{'hours':>8}  {'cluster':<16}{'team':<22}location"]
    for c in payload["candidates"]:
        hours = "-" if c["hours_open"] is None else f"{c['hours_open']:.1f}"
        lines.append(
            f"{c['ticket_id']:<14}{c['metres']:>8}  {c['sla_state']:<9}{hours:>8}  "
            f"{c['cluster'] or '-':<16}{c['assigned_team'] or '-':<22}{c['location_name'] or '-'}"
        )
    if not payload["candidates"]:
        lines.append("no open ticket with a point matches")
    lines.append(f"{payload['unplaced_open']} open ticket(s) matching the filters have no point and were not offered")
    return "\n".join(lines)
