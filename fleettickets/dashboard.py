"""The dashboard payload: what reporting.fn_inc_dashboard serves the map, as plain data."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import psycopg

from fleettickets import clock, defaults, entry_points
from fleettickets.db import connect
from fleettickets.errors import DashboardArgumentError
from fleettickets.settings import Settings

DEFAULT_MAX_FEATURES = defaults.DEFAULT_MAX_FEATURES

DASHBOARD_SQL = """
SELECT reporting.fn_inc_dashboard(
    p_cluster => %(cluster)s, p_status => %(status)s, p_window => %(window)s,
    p_from => %(date_from)s, p_to => %(date_to)s, p_max_features => %(max_features)s,
    p_now => %(now)s)
"""

DASHBOARD_TEXT_SQL = DASHBOARD_SQL.replace("p_now => %(now)s)", "p_now => %(now)s)::text")

# The function's messages name its SQL parameters; an operator types options.
_OPTION_NAMES = {
    "p_window": "--window",
    "p_from": "--from",
    "p_to": "--to",
    "p_status": "--status",
    "p_max_features": "--max-features",
    "p_cluster": "--cluster",
}


def fetch_dashboard(
    settings: Settings,
    *,
    cluster: str | None = None,
    status: str | None = None,
    window: str = "today",
    date_from: date | None = None,
    date_to: date | None = None,
    max_features: int | None = DEFAULT_MAX_FEATURES,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The payload exactly as the dashboard API receives it, parsed into a dict.

    Windows and hours open are as of `now` (default: the clock).
    """
    with connect(settings, autocommit=True) as conn:
        payload: dict[str, Any] = read_dashboard(
            conn,
            cluster=cluster,
            status=status,
            window=window,
            date_from=date_from,
            date_to=date_to,
            max_features=max_features,
            now=now or clock.now(),
        )
    return payload


def fetch_dashboard_text(settings: Settings, **arguments: Any) -> str:
    """The payload as the database writes it, not parsed: what the map receives, byte for byte."""
    arguments.setdefault("now", None)
    arguments["now"] = arguments["now"] or clock.now()
    arguments.setdefault("max_features", DEFAULT_MAX_FEATURES)
    with connect(settings, autocommit=True) as conn:
        return str(read_dashboard(conn, query=DASHBOARD_TEXT_SQL, **arguments))


# p_max_features is an SQL integer; a larger number would not find the function.
MAX_FEATURES_RANGE = (1, 2**31 - 1)


def read_dashboard(conn: psycopg.Connection, *, query: str = DASHBOARD_SQL, **arguments: Any) -> Any:
    low, high = MAX_FEATURES_RANGE
    cap = arguments.get("max_features")
    if cap is not None and not low <= cap <= high:
        raise DashboardArgumentError(f"--max-features must be from {low} to {high:,} (got {cap})")
    return entry_points.call(
        conn,
        query,
        arguments,
        function="reporting.fn_inc_dashboard",
        option_names=_OPTION_NAMES,
        refusal=DashboardArgumentError,
    )
