"""The one clock: every "now" that decides what a command does comes from here.

Production reads the system clock. A preview, a replay or a test pins it with
the global `--now` option (or FLEETTICKETS_NOW), so what the job does at
06:00 EAT, across EAT midnight or on the last day of a month can be run at any
hour in any host time zone. What is not "now" in this sense reads the real
clocks on purpose: durations (time.monotonic), log stamps, and ages the
database measures between two stamps it wrote itself (see docs/history.md,
"The clock").
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta, timezone

from fleettickets.errors import ConfigError

# Nairobi has kept UTC+3 all year since 1942: a fixed offset is exact and needs no tz database.
EAT = timezone(timedelta(hours=3), "EAT")
NOW_ENV = "FLEETTICKETS_NOW"

_pinned: datetime | None = None


def parse_instant(text: str, *, source: str = NOW_ENV) -> datetime:
    """An ISO 8601 instant; without an offset it is EAT wall-clock time, as operators read it."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"{source} must be an ISO 8601 instant such as 2026-06-15T06:00:00+03:00 "
            f"(EAT when no offset is given), not {text!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=EAT)


def pin(moment: datetime | None) -> None:
    """Make now() answer `moment` from here on (None gives the system clock back)."""
    global _pinned
    if moment is not None and moment.tzinfo is None:
        raise ValueError("a pinned instant needs a time zone")
    _pinned = moment


def pinned() -> bool:
    """Whether now() is a chosen instant rather than the system clock."""
    return _pinned is not None or bool(os.environ.get(NOW_ENV))


def now() -> datetime:
    """The instant the product acts at: the pinned one, FLEETTICKETS_NOW, or the system clock."""
    if _pinned is not None:
        return _pinned
    text = os.environ.get(NOW_ENV)
    if text:
        return parse_instant(text)
    return datetime.now(UTC)


def eat_day(moment: datetime) -> date:
    """The EAT calendar day an instant falls on (a UTC date is wrong from 21:00 to 24:00 UTC)."""
    return moment.astimezone(EAT).date()


def eat_text(moment: datetime | None, *, seconds: bool = False, missing: str = "-") -> str:
    """A moment as operators in Nairobi read it (2026-06-15 08:10 EAT); `missing` when there is none."""
    if moment is None:
        return missing
    return moment.astimezone(EAT).strftime("%Y-%m-%d %H:%M:%S EAT" if seconds else "%Y-%m-%d %H:%M EAT")
