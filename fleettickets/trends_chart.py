"""The map page's trends section: fn_inc_trends and fn_team_closures drawn as inline SVG and a table.

Three small charts share one x axis (one slot per period): created and closed
bars with the backlog and breached lines, MTTR median and p90, and the SLA and
48-hour rates on a percent axis. A missing value (a day before the first
history capture, a period with no closure) is a gap in its line, never a zero.
Each chart's legend sits in a band above its plot so the two never overlap.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

DAILY_UP_TO = 92  # days; a longer range is drawn by ISO week
WEEKLY_UP_TO = 156  # weeks; a longer range is drawn by month
MONTHS_AT_MOST = 400  # what fn_inc_trends accepts

WIDTH, HEIGHT = 960, 210
PAD_L, PAD_R, PAD_T, PAD_B = 64, 64, 34, 30
X_LABELS_AT_MOST = 8


@dataclass(frozen=True)
class Range:
    first: date
    last: date
    grain: str


def trend_range(first: date, last: date) -> Range:
    """The page's days at a grain the charts can draw: daily, weekly when long, monthly when very long."""
    days = (last - first).days + 1
    if days <= DAILY_UP_TO:
        return Range(first, last, "day")
    if days <= WEEKLY_UP_TO * 7:
        return Range(first, last, "week")
    months = (last.year - first.year) * 12 + last.month - first.month + 1
    if months > MONTHS_AT_MOST:  # the newest 400 months; a page never needs more
        back = last.year * 12 + last.month - MONTHS_AT_MOST
        first = date(back // 12, back % 12 + 1, 1)
    return Range(first, last, "month")


@dataclass(frozen=True)
class Series:
    key: str  # the CSS class of its marks
    label: str
    values: list[float | None]
    unit: Callable[[float], str]


def render_trends(trends: dict[str, Any], teams: dict[str, Any]) -> str:
    periods = trends["series"]
    if not periods:
        return '<p class="none">No periods to draw.</p>'
    counts = _chart(
        "trend-counts",
        "Created and closed per period, backlog and breached at its end",
        periods,
        bars=[
            Series("created-bar", "created", [p["created"] for p in periods], _count),
            Series("closed-bar", "closed", [p["closed"] for p in periods], _count),
        ],
        lines=[
            Series("backlog", "open at end", [p["backlog_end"] for p in periods], _count),
            Series("breached", "breached (over 48 h) at end", [p["breached_end"] for p in periods], _count),
        ],
        line_axis="right",
    )
    longest = max((p["mttr_minutes"]["p90"] or 0 for p in periods), default=0)
    mttr = _chart(
        "trend-mttr",
        "Time to restore of the period's closures",
        periods,
        bars=[],
        lines=[
            Series("mttr-median", "MTTR median", [p["mttr_minutes"]["median"] for p in periods], _duration),
            Series("mttr-p90", "MTTR p90", [p["mttr_minutes"]["p90"] for p in periods], _duration),
        ],
        top=_nice(longest / 60) * 60,  # whole hours at the ticks
    )
    rates = _chart(
        "trend-rates",
        "SLA compliance and 48-hour contract of the period's closures",
        periods,
        bars=[],
        lines=[
            Series("sla-rate", "SLA compliant", [_percent_of(p["sla_compliance"]["rate"]) for p in periods], _percent),
            Series(
                "c48-rate", "closed within 48 h", [_percent_of(p["contract_48h"]["rate"]) for p in periods], _percent
            ),
        ],
        top=100.0,
    )
    return f"{counts}\n{mttr}\n{rates}\n{render_team_table(teams)}"


def render_team_table(teams: dict[str, Any]) -> str:
    rows = teams["teams"]
    caption = f"Closures of {teams['from']} to {teams['to']} by the team that closed them, and open tickets now"
    if not rows:
        return f'<p class="none" id="team-table">{_e(caption)}: none.</p>'
    head = "".join(
        f"<th>{name}</th>"
        for name in ("team", "closed", "MTTR median", "MTTR p90", "SLA", "48 h", "open now", "open breached")
    )
    body = "".join(
        f"<tr><td>{_e(t['team'] or '(no team)')}</td><td>{t['closed']}</td>"
        f"<td>{_maybe(t['mttr_minutes']['median'], _duration)}</td><td>{_maybe(t['mttr_minutes']['p90'], _duration)}</td>"
        f"<td>{_maybe(_percent_of(t['sla_compliance']['rate']), _percent)}</td>"
        f"<td>{_maybe(_percent_of(t['contract_48h']['rate']), _percent)}</td>"
        f"<td>{t['open_now']}</td><td>{t['open_breached_now']}</td></tr>"
        for t in rows
    )
    return f'<table id="team-table"><caption>{_e(caption)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _chart(
    chart_id: str,
    title: str,
    periods: list[dict[str, Any]],
    *,
    bars: Sequence[Series],
    lines: Sequence[Series],
    line_axis: str = "left",
    top: float | None = None,
) -> str:
    plot_w, plot_h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B
    step = plot_w / len(periods)
    bottom = PAD_T + plot_h

    def x(i: int) -> float:
        return PAD_L + step * (i + 0.5)

    def scale(highest: float) -> Callable[[float], float]:
        return lambda value: bottom - plot_h * value / highest

    bar_top = _nice(max((v for s in bars for v in s.values if v is not None), default=0))
    line_top = top or _nice(max((v for s in lines for v in s.values if v is not None), default=0))
    y_bar, y_line = scale(bar_top), scale(line_top)
    parts = [f'<rect class="plot-area" x="{PAD_L}" y="{PAD_T}" width="{plot_w}" height="{plot_h}"/>']
    if bars:
        parts.append(_axis("left", bar_top, y_bar, bars[0].unit))
    if lines:
        parts.append(_axis("left" if not bars else line_axis, line_top, y_line, lines[0].unit))
    width = min(18.0, max(1.0, step * 0.8 / max(1, len(bars))))
    for n, series in enumerate(bars):
        for i, value in enumerate(series.values):
            left = x(i) - width * len(bars) / 2 + width * n
            height = bottom - y_bar(value or 0)
            parts.append(
                f'<rect class="{series.key}" data-period="{periods[i]["period_start"]}" x="{left:.1f}" '
                f'y="{bottom - height:.1f}" width="{width:.1f}" height="{height:.1f}">'
                f"<title>{_e(_when(periods[i]))}: {_maybe(value, series.unit)} {series.label}</title></rect>"
            )
    for series in lines:
        parts.extend(_line(series, periods, x, y_line))
    parts.append(_x_labels(periods, x, bottom))
    parts.append(_legend([*bars, *lines], bars=len(bars)))
    first, last = periods[0]["period_start"], periods[-1]["period_end"]
    return (
        f'<figure class="trend"><figcaption>{_e(title)}</figcaption>'
        f'<svg id="{chart_id}" class="trend-chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
        f'aria-label="{_e(title)}, {first} to {last}">{"".join(parts)}</svg></figure>'
    )


def _line(
    series: Series, periods: list[dict[str, Any]], x: Callable[[int], float], y: Callable[[float], float]
) -> list[str]:
    """One polyline per run of known values (a null breaks the line), and a dot per known value."""
    runs: list[list[str]] = [[]]
    dots = []
    for i, value in enumerate(series.values):
        if value is None:
            runs.append([])
            continue
        runs[-1].append(f"{x(i):.1f},{y(value):.1f}")
        dots.append(
            f'<circle class="{series.key} point" data-period="{periods[i]["period_start"]}" '
            f'data-value="{value}" cx="{x(i):.1f}" cy="{y(value):.1f}" r="2.5">'
            f"<title>{_e(_when(periods[i]))}: {series.unit(value)} {series.label}</title></circle>"
        )
    lines = [f'<polyline class="{series.key} line" points="{" ".join(run)}"/>' for run in runs if len(run) > 1]
    return [*lines, *dots]


def _axis(side: str, top: float, y: Callable[[float], float], unit: Callable[[float], str]) -> str:
    at = PAD_L if side == "left" else WIDTH - PAD_R
    anchor, dx = ("end", -6) if side == "left" else ("start", 6)
    ticks = "".join(
        f'<line class="grid" x1="{PAD_L}" y1="{y(v):.1f}" x2="{WIDTH - PAD_R}" y2="{y(v):.1f}"/>'
        f'<text class="y-label {side}" x="{at + dx}" y="{y(v) + 4:.1f}" text-anchor="{anchor}">{unit(v)}</text>'
        for v in (0, top / 2, top)
    )
    return f'<line class="axis" x1="{at}" y1="{PAD_T}" x2="{at}" y2="{y(0):.1f}"/>{ticks}'


def _x_labels(periods: list[dict[str, Any]], x: Callable[[int], float], bottom: float) -> str:
    every = max(1, math.ceil(len(periods) / X_LABELS_AT_MOST))
    shown = list(range(0, len(periods), every))
    return f'<line class="axis" x1="{PAD_L}" y1="{bottom}" x2="{WIDTH - PAD_R}" y2="{bottom}"/>' + "".join(
        f'<text class="x-label" x="{x(i):.1f}" y="{bottom + 16}" text-anchor="middle">{periods[i]["period_start"]}</text>'
        for i in shown
    )


def _legend(series: Sequence[Series], *, bars: int) -> str:
    items, at = [], float(PAD_L)
    for n, s in enumerate(series):
        mark = (
            f'<rect class="{s.key}" x="0" y="-9" width="12" height="9"/>'
            if n < bars
            else f'<line class="{s.key} line" x1="0" y1="-4" x2="16" y2="-4"/>'
        )
        items.append(f'<g transform="translate({at:.0f},0)">{mark}<text x="20" y="0">{_e(s.label)}</text></g>')
        at += 30 + 6.5 * len(s.label)
    return f'<g class="legend" transform="translate(0,16)">{"".join(items)}</g>'


def _nice(highest: float) -> float:
    """An axis top at or above `highest`: 1, 2 or 5 times a power of ten (1 for nothing)."""
    if highest <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(highest))
    return next(float(f * power) for f in (1, 2, 5, 10) if f * power >= highest)


def _when(period: dict[str, Any]) -> str:
    start, end = period["period_start"], period["period_end"]
    return start if start == end else f"{start} to {end}"


def _count(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


def _duration(minutes: float) -> str:
    if minutes < 120:
        return f"{minutes:.0f} min"
    if minutes < 48 * 60:
        return f"{minutes / 60:.1f} h"
    return f"{minutes / 1440:.1f} d"


def _percent_of(rate: float | None) -> float | None:
    return None if rate is None else round(float(rate) * 100, 1)


def _percent(value: float) -> str:
    return f"{value:.0f}%" if value == int(value) else f"{value:.1f}%"


def _maybe(value: float | None, unit: Callable[[float], str]) -> str:
    return "-" if value is None else unit(value)


def _e(value: Any) -> str:
    return html.escape(str(value))
