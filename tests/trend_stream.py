"""A seeded change stream over ten weeks for the trend and team closure tests.

Tickets open and close at random instants; a file every two days carries the
tickets created or closed since the previous one, and some closed tickets are
re-assigned to another team by a later file. Team and cluster spellings differ
in case and surrounding spaces, SLA statuses in case, and some clocks or mttr
values are missing, as in the feed.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

from tests.crafted import EAT, eat_text

COLUMNS = (
    "ticket_id",
    "normalized_status",
    "is_actionable",
    "cluster",
    "owner",
    "assigned_team",
    "sla_status",
    "mttr",
    "created_at_service",
    "first_seen_at",
    "closed_at",
    "latitude",
    "longitude",
    "region",
    "location_name",
)
CLUSTERS = ("Kayole", "KAYOLE", "Pipeline", " pipeline", "Umoja", "")
TEAMS = ("East 1", " east 1 ", "East 2", "EAST 2", "West 9", "")
SLA = ("Compliant", "compliant", "Breached", "BREACHED", "", "Unknown")
DAYS = 70
FILE_EVERY = timedelta(days=2)


@dataclass
class Ticket:
    ticket_id: str
    created: datetime
    closed: datetime | None
    cluster: str
    team: str
    later_team: str | None
    sla_status: str
    mttr: str
    has_service_clock: bool

    def row(self, at: datetime, team: str | None = None) -> dict[str, str]:
        closed = self.closed is not None and self.closed <= at
        clock = eat_text(self.created)
        return {
            "ticket_id": self.ticket_id,
            "normalized_status": "closed" if closed else "open",
            "is_actionable": "false" if closed else "true",
            "cluster": self.cluster,
            "owner": f"eng{int(self.ticket_id[1:]) % 7}",
            "assigned_team": team if team is not None else self.team,
            "sla_status": self.sla_status if closed else "",
            "mttr": self.mttr if closed else "",
            "created_at_service": clock if self.has_service_clock else "",
            "first_seen_at": clock,
            "closed_at": eat_text(self.closed) if closed and self.closed else "",
        }


def first_file_at(today: date) -> datetime:
    return datetime.combine(today - timedelta(days=DAYS), time(7, 0), EAT)


def write_trend_stream(folder: Path, today: date, *, seed: int = 31, tickets: int = 600) -> list[Path]:
    """The change files, oldest first; the last one is stamped at 07:00 EAT on `today`."""
    rng = random.Random(seed)
    start = first_file_at(today)
    end = datetime.combine(today, time(7, 0), EAT)
    span = (end - start).total_seconds()
    made = []
    for n in range(tickets):
        created = start - timedelta(days=5) + timedelta(seconds=rng.uniform(0, span + 5 * 86400))
        closed = created + timedelta(hours=rng.uniform(0.5, 120)) if rng.random() < 0.8 else None
        made.append(
            Ticket(
                ticket_id=f"T{n:05d}",
                created=created,
                closed=closed,
                cluster=rng.choice(CLUSTERS),
                team=rng.choice(TEAMS),
                later_team=rng.choice(TEAMS) if rng.random() < 0.2 else None,
                sla_status=rng.choice(SLA),
                mttr=rng.choice((f"{rng.uniform(0.1, 90):.2f}", f"{rng.uniform(0.1, 90):.2f}", "", "#VALUE!")),
                has_service_clock=rng.random() < 0.9,
            )
        )
    paths = []
    previous: datetime | None = None
    at = start
    while at <= end:
        rows = []
        for t in made:
            new = t.created <= at and (previous is None or t.created > previous)
            closing = t.closed is not None and previous is not None and previous < t.closed <= at
            # re-assigned two files after the closure was first shown
            moved = (
                t.later_team is not None
                and t.closed is not None
                and previous is not None
                and previous < t.closed + 2 * FILE_EVERY <= at
            )
            if moved:
                rows.append(t.row(at, team=t.later_team))
            elif new or closing:
                rows.append(t.row(at))
        paths.append(write_file(folder, at, rows))
        previous, at = at, at + FILE_EVERY
    return paths


def write_file(folder: Path, at: datetime, rows: list[dict[str, str]]) -> Path:
    path = folder / f"{at:%Y-%m-%dT%H-%M-%S}.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows({c: row.get(c, "") for c in COLUMNS} for row in rows)
    return path
