"""An independent model of ticket history, computed in Python from the CSV files.

Written apart from migrations/10_history.sql on purpose: it reads the files,
keeps each ticket's versions in file order and derives closures and daily rows
by plain iteration, so the SQL under test is never reused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from tests.stream_tools import file_records

EAT = timezone(timedelta(hours=3))
SLA = timedelta(hours=48)
_TIME = re.compile(r"^(\d{4})-(\d\d)-(\d\d)(?:[ T](\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,9}))?)?)?$")
_NOT_TEXT = {"", "N/A", "#N/A", "NULL", "#VALUE!", "#REF!", "#NAME?", "#DIV/0!", "#NUM!", "#NULL!"}

Record = dict[str, Any]


def file_time(path: Path) -> datetime:
    return datetime.strptime(path.stem, "%Y-%m-%dT%H-%M-%S").replace(tzinfo=EAT)


def eat_time(text: str | None) -> datetime | None:
    match = _TIME.match((text or "").strip())
    if not match:
        return None
    y, mo, d, h, mi, s, frac = match.groups()
    try:
        at = datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0), tzinfo=EAT)
    except ValueError:
        return None
    return at + timedelta(microseconds=round(float("0." + frac) * 1e6)) if frac else at


def flag(text: str | None) -> bool | None:
    value = (text or "").strip().lower()
    if value in ("true", "t", "1", "yes", "y"):
        return True
    if value in ("false", "f", "0", "no", "n"):
        return False
    return None


def text(value: str | None) -> str | None:
    stripped = (value or "").strip()
    return None if stripped.upper() in _NOT_TEXT else stripped


def versions(paths: list[Path]) -> dict[str, list[tuple[datetime, Record]]]:
    """Each ticket's versions in file-time order; a row equal to the previous one is not a version."""
    found: dict[str, list[tuple[datetime, Record]]] = {}
    for path in sorted(paths, key=file_time):
        at = file_time(path)
        for ticket, record in file_records(path).items():
            seq = found.setdefault(ticket, [])
            if not seq or seq[-1][1] != record:
                seq.append((at, record))
    return found


def state_before(
    history: dict[str, list[tuple[datetime, Record]]], instant: datetime, inclusive: bool = False
) -> dict[str, Record]:
    state = {}
    for ticket, seq in history.items():
        current = [r for at, r in seq if at < instant or (inclusive and at == instant)]
        if current:
            state[ticket] = current[-1]
    return state


@dataclass(frozen=True)
class Closure:
    ticket_id: str
    observed_at: datetime
    closed_at: datetime | None
    source_name: str
    first_observation: bool
    mttr_hours: str | None


def closures(history: dict[str, list[tuple[datetime, Record]]]) -> list[Closure]:
    """A closed version whose previous version was not closed (or that came first)."""
    events = []
    for ticket, seq in history.items():
        before: bool | None = None
        for position, (at, record) in enumerate(seq):
            closed = flag(record.get("is_actionable")) is False
            if closed and not before:
                mttr = text(record.get("mttr"))
                events.append(
                    Closure(
                        ticket,
                        at,
                        eat_time(record.get("closed_at")),
                        at.strftime("%Y-%m-%dT%H-%M-%S.csv"),
                        position == 0,
                        mttr,
                    )
                )
            before = closed
    return sorted(events, key=lambda e: (e.ticket_id, e.observed_at))


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=EAT)


def daily_rows(paths: list[Path], now: datetime) -> list[dict[str, Any]]:
    """One row per EAT day from the first file's day to now's, as observed before min(day end, now)."""
    history = versions(paths)
    events = closures(history)
    first_seen = {t: seq[0][0] for t, seq in history.items()}
    first_day = min(first_seen.values()).astimezone(EAT).date()
    rows = []
    day = first_day
    while day <= now.astimezone(EAT).date():
        start = day_start(day)
        as_of = min(day_start(day + timedelta(days=1)), now)
        opened = [r for r in state_before(history, as_of).values() if flag(r.get("is_actionable"))]
        by_cluster: dict[str, int] = {}
        breached_by_cluster: dict[str, int] = {}
        breached = fallback = 0
        for record in opened:
            cluster = text(record.get("cluster")) or "(blank)"
            by_cluster[cluster] = by_cluster.get(cluster, 0) + 1
            service = eat_time(record.get("created_at_service"))
            clock = service or eat_time(record.get("first_seen_at"))
            if clock is not None and clock < as_of - SLA:
                breached += 1
                breached_by_cluster[cluster] = breached_by_cluster.get(cluster, 0) + 1
            fallback += service is None
        rows.append(
            {
                "snapshot_date": day,
                "as_of": as_of,
                "open_total": len(opened),
                "open_breached": breached,
                "open_on_first_seen_clock": fallback,
                "opened": sum(start <= at < as_of for at in first_seen.values()),
                "closed_today": sum(start <= e.observed_at < as_of for e in events),
                "open_by_cluster": dict(sorted(by_cluster.items())),
                "breached_by_cluster": dict(sorted(breached_by_cluster.items())),
            }
        )
        day += timedelta(days=1)
    return rows
