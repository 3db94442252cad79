"""Trends and team closures: what reporting.fn_inc_trends and fn_team_closures answer, laid out.

The functions hold every rule; this module checks the options before any
connection is made, calls them, and lays the payload out as a table for a
person or CSV for a spreadsheet (JSON is the payload unchanged).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from fleettickets import clock, entry_points
from fleettickets.db import connect
from fleettickets.errors import UsageError
from fleettickets.settings import Settings

GRAINS = ("day", "week", "month")
FORMATS = ("table", "json", "csv")
DEFAULT_DAYS = 30
MAX_PERIODS = 400  # the functions refuse more; checked here too so a bad range never reaches the database

TRENDS_SQL = """
SELECT reporting.fn_inc_trends(p_from => %(first)s, p_to => %(last)s, p_grain => %(grain)s,
                               p_cluster => %(cluster)s, p_now => %(now)s)
"""
TEAMS_SQL = """
SELECT reporting.fn_team_closures(p_from => %(first)s, p_to => %(last)s, p_cluster => %(cluster)s,
                                  p_now => %(now)s)
"""

# The functions' messages name their SQL parameters; an operator types options.
_OPTION_NAMES = {"p_from": "--from", "p_to": "--to", "p_grain": "--grain", "p_cluster": "--cluster"}


@dataclass(frozen=True)
class Request:
    first: date
    last: date
    grain: str
    cluster: str | None
    output: str
    now: datetime


def request(
    date_from: str | None,
    date_to: str | None,
    *,
    grain: str = "day",
    cluster: str | None = None,
    output: str = "table",
    now: datetime | None = None,
) -> Request:
    """The options checked; without dates, the last 30 EAT days through today (by the clock)."""
    moment = now or clock.now()
    if output not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)} (got {output!r})")
    if grain not in GRAINS:
        raise UsageError(f"--grain must be one of {', '.join(GRAINS)} (got {grain!r})")
    last = _day("--to", date_to) if date_to else None
    first = _day("--from", date_from) if date_from else None
    if last is None:
        last = clock.eat_day(moment)
    if first is None:
        first = last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise UsageError(f"--from ({first}) is after --to ({last}); both days are inclusive")
    periods = _periods(first, last, grain)
    if periods > MAX_PERIODS:
        raise UsageError(
            f"{first} to {last} is {periods} periods of a {grain}, more than {MAX_PERIODS}: "
            "use a coarser --grain (week or month) or a shorter range"
        )
    return Request(first, last, grain, cluster, output, moment)


def fetch_trends(settings: Settings, req: Request) -> dict[str, Any]:
    return _fetch(settings, TRENDS_SQL, req, "reporting.fn_inc_trends")


def fetch_team_closures(settings: Settings, req: Request) -> dict[str, Any]:
    return _fetch(settings, TEAMS_SQL, req, "reporting.fn_team_closures")


def render_trends(payload: dict[str, Any], output: str) -> str:
    return _render(output, payload, payload["series"], (_period_row, TREND_CSV), (_period_cells, TREND_COLUMNS))


def render_team_closures(payload: dict[str, Any], output: str) -> str:
    return _render(output, payload, payload["teams"], (_team_row, TEAM_CSV), (_team_cells, TEAM_COLUMNS))


# --- layouts ---------------------------------------------------------------------

TREND_COLUMNS = ("period", "created", "closed", "ratio", "backlog", "breached", "mttr_median", "mttr_p90", "sla", "48h")
TEAM_COLUMNS = ("team", "closed", "mttr_median", "mttr_p90", "sla", "48h", "open_now", "open_breached")
_METRICS_CSV = (
    "mttr_median_minutes",
    "mttr_p90_minutes",
    "mttr_samples",
    "sla_compliant",
    "sla_breached",
    "sla_unknown",
    "sla_rate",
    "contract_48h_within",
    "contract_48h_breached",
    "contract_48h_unknown",
    "contract_48h_rate",
)
TREND_CSV = (
    "period_start",
    "period_end",
    "created",
    "closed",
    "closure_ratio",
    "backlog_end",
    "breached_end",
    *_METRICS_CSV,
)
TEAM_CSV = ("team", "closed", *_METRICS_CSV, "open_now", "open_breached_now")


def _metrics_row(item: dict[str, Any]) -> dict[str, Any]:
    """The nested objects flattened under spreadsheet-friendly names."""
    mttr, sla, c48 = item["mttr_minutes"], item["sla_compliance"], item["contract_48h"]
    return {
        "mttr_median_minutes": mttr["median"],
        "mttr_p90_minutes": mttr["p90"],
        "mttr_samples": mttr["samples"],
        "sla_compliant": sla["compliant"],
        "sla_breached": sla["breached"],
        "sla_unknown": sla["unknown"],
        "sla_rate": sla["rate"],
        "contract_48h_within": c48["within"],
        "contract_48h_breached": c48["breached"],
        "contract_48h_unknown": c48["unknown"],
        "contract_48h_rate": c48["rate"],
    }


def _period_row(entry: dict[str, Any]) -> dict[str, Any]:
    keys = ("period_start", "period_end", "created", "closed", "closure_ratio", "backlog_end", "breached_end")
    return {**{k: entry[k] for k in keys}, **_metrics_row(entry)}


def _team_row(team: dict[str, Any]) -> dict[str, Any]:
    return {
        "team": team["team"],
        "closed": team["closed"],
        **_metrics_row(team),
        "open_now": team["open_now"],
        "open_breached_now": team["open_breached_now"],
    }


def _period_cells(entry: dict[str, Any]) -> list[str]:
    start, end = entry["period_start"], entry["period_end"]
    return [
        start if start == end else f"{start}..{end}",
        _n(entry["created"]),
        _n(entry["closed"]),
        _pct(entry["closure_ratio"]),
        _n(entry["backlog_end"]),
        _n(entry["breached_end"]),
        _n(entry["mttr_minutes"]["median"]),
        _n(entry["mttr_minutes"]["p90"]),
        _pct(entry["sla_compliance"]["rate"]),
        _pct(entry["contract_48h"]["rate"]),
    ]


def _team_cells(team: dict[str, Any]) -> list[str]:
    return [
        team["team"] or "(no team)",
        _n(team["closed"]),
        _n(team["mttr_minutes"]["median"]),
        _n(team["mttr_minutes"]["p90"]),
        _pct(team["sla_compliance"]["rate"]),
        _pct(team["contract_48h"]["rate"]),
        _n(team["open_now"]),
        _n(team["open_breached_now"]),
    ]


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def _render(
    output: str,
    payload: dict[str, Any],
    items: list[dict[str, Any]],
    csv_layout: tuple[Callable[[dict[str, Any]], dict[str, Any]], tuple[str, ...]],
    table_layout: tuple[Callable[[dict[str, Any]], list[str]], tuple[str, ...]],
) -> str:
    if output == "json":
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    if output == "csv":
        row, header = csv_layout
        out = io.StringIO()
        writer = csv.DictWriter(out, header, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row(item).items()} for item in items)
        return out.getvalue().rstrip("\n")
    cells, columns = table_layout
    table = [list(columns), *(cells(item) for item in items)]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    # the first column is text, the rest are numbers: left and right aligned
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths, strict=False))
        ).rstrip()
        for line in table
    )


# --- database ---------------------------------------------------------------------


def _fetch(settings: Settings, statement: str, req: Request, function: str) -> dict[str, Any]:
    arguments = {"first": req.first, "last": req.last, "grain": req.grain, "cluster": req.cluster, "now": req.now}
    with connect(settings, autocommit=True) as conn:
        payload: dict[str, Any] = entry_points.call(
            conn, statement, arguments, function=function, option_names=_OPTION_NAMES, refusal=UsageError
        )
    return payload


def _day(option: str, text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{option} must be a day as YYYY-MM-DD (EAT), not {text!r}") from None


def _periods(first: date, last: date, grain: str) -> int:
    if grain == "day":
        return (last - first).days + 1
    if grain == "week":
        return (last - timedelta(days=last.weekday()) - (first - timedelta(days=first.weekday()))).days // 7 + 1
    return (last.year - first.year) * 12 + last.month - first.month + 1
