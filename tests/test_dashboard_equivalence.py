"""Migration 17's fn_inc_dashboard returns the very payload of migration 12's.

Migration 12's function is installed beside it under another name as the
reference: it computes every section straight from tickets.inc the plain way
(one sort per median, the open set read whole). Change files go through the
real loader, one at a time: a baseline, then reopening, reclosing, owner and
cluster changes, closures moving across EAT midnight, ties in hours_open at
the feature cap, and a geometry refresh. After each step both functions are
asked the same questions and must answer with the same text, byte for byte.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from fleettickets.ingest import run_ingest
from fleettickets.settings import Settings
from tests.crafted import EAT, eat_text
from tests.fix_clock import TEST_NOW
from tests.migration_text import function_as_created

TODAY = TEST_NOW.astimezone(EAT).date()
MIDNIGHT = datetime.combine(TODAY, time(0), EAT)
ANCHOR = MIDNIGHT + timedelta(hours=14, minutes=30)
H = timedelta(hours=1)

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


def at(delta: timedelta) -> str:
    return eat_text(ANCHOR + delta)


def midnight(days: int, seconds: float = 0) -> str:
    return eat_text(MIDNIGHT + timedelta(days=days, seconds=seconds))


def opened(ticket_id: str, clock: str, **fields: str) -> dict[str, str]:
    return {
        "ticket_id": ticket_id,
        "normalized_status": "open",
        "is_actionable": "true",
        "created_at_service": clock,
        "first_seen_at": clock,
        **fields,
    }


def closed(ticket_id: str, clock: str, closed_at: str, mttr: str, **fields: str) -> dict[str, str]:
    return {
        "ticket_id": ticket_id,
        "normalized_status": "closed",
        "is_actionable": "false",
        "created_at_service": clock,
        "first_seen_at": clock,
        "closed_at": closed_at,
        "mttr": mttr,
        **fields,
    }


KAYOLE = {"cluster": "Kayole", "assigned_team": "East 1"}
PIPELINE = {"cluster": "Pipeline", "assigned_team": "East 2"}
FEED_POINT = {"latitude": "-1.2841", "longitude": "36.8472"}

BASELINE = [
    # open: every SLA state and clock source, spellings that differ in case only
    opened("O1", at(-10 * H), owner="a.otieno", **KAYOLE),
    opened("O2", at(-40 * H), owner="a.otieno", **KAYOLE, **FEED_POINT),
    opened("O3", at(-50 * H), owner="b.wanjiku", **PIPELINE) | {"created_at_service": ""},
    opened("O4", "", owner="b.wanjiku", assigned_team="East 2") | {"first_seen_at": ""},
    opened(
        "O5",
        at(-47 * H - timedelta(minutes=59)),
        owner="c.kamau",
        cluster="KAYOLE",
        assigned_team="East 1",
        normalized_status="in_progress",
    ),
    opened("O6", at(2 * H), owner="", **PIPELINE, **FEED_POINT),  # clock in the future: negative hours
    # ties: hours_open rounds to 10.00 for all five, clock order is the reverse of id order
    *[
        opened(f"TIE_{name}", at(-10 * H - timedelta(seconds=s)), owner="d.mutua", **KAYOLE)
        for name, s in (("E", 16), ("D", 12.5), ("C", 8), ("B", 4), ("A", 1))
    ],
    # closures around the EAT day edges, odd and even counts per owner and team
    closed("C1", at(-3.5 * H), at(-2 * H), "1.5", owner="a.otieno", sla_status="Compliant", **KAYOLE),
    closed("C2", midnight(0, -60 * 3600), midnight(0), "3", owner="a.otieno", sla_status="compliant", **KAYOLE),
    closed(
        "C3", midnight(-1, -3600), midnight(0, -0.000001), "10", owner="b.wanjiku", sla_status="BREACHED", **PIPELINE
    ),
    closed(
        "C4", midnight(0, 2 * 3600 - 1), midnight(0, 3 * 3600 - 1), "0.5", owner="b.wanjiku", sla_status="", **PIPELINE
    ),
    closed(
        "C5",
        midnight(0, 8 * 3600),
        midnight(0, 10 * 3600),
        "2",
        owner="c.kamau",
        sla_status="Compliant",
        assigned_team="East 1",
    ),  # no cluster: no place
    closed("C6", midnight(-6, -3600), midnight(-6), "4", owner="a.otieno", sla_status="Compliant", **PIPELINE),
    closed("C7", midnight(-6, -7200), midnight(-6, -1), "5", owner="a.otieno", sla_status="Breached", **PIPELINE),
    closed(
        "C8", midnight(-20, -3600), midnight(-20, 7200), "#VALUE!", owner="c.kamau", sla_status="Compliant", **KAYOLE
    ),  # mttr debris
    closed("C9", midnight(-29), midnight(-29, 1), "7.25", owner="a.otieno", **KAYOLE),
    closed("C10", midnight(-30, -1), midnight(-29, -1), "0.1", owner="a.otieno", **KAYOLE),
    closed(
        "C11",
        midnight(-2, 3600),
        midnight(-2, 5 * 3600),
        "4",
        owner="d.mutua",
        sla_status="Breached",
        cluster="kayole",
        assigned_team="East 1",
    ),
    closed("C12", midnight(-2, 3600), "", "1", owner="d.mutua", **KAYOLE),  # closed without a time
]


# What each change file does, in the order the loader applies them.
STEPS: list[tuple[str, list[dict[str, str]]]] = [
    ("baseline", BASELINE),
    (
        "reopen, owner and cluster change",
        [
            opened("C1", at(-3.5 * H), owner="a.otieno", sla_status="Compliant", **KAYOLE),
            opened("O1", at(-10 * H), owner="e.njeri", **KAYOLE),
            opened("O2", at(-40 * H), owner="a.otieno", cluster="Pipeline", assigned_team="East 2", **FEED_POINT),
            closed("N1", at(-30 * H), at(-1 * H), "29", owner="e.njeri", sla_status="Compliant", **PIPELINE),
        ],
    ),
    (
        "reclose on another day, closures cross midnight",
        [
            closed("C1", at(-3.5 * H), midnight(-1, 23 * 3600), "8", owner="a.otieno", sla_status="Breached", **KAYOLE),
            closed(
                "C2", midnight(0, -60 * 3600), midnight(0, -1), "3", owner="a.otieno", sla_status="compliant", **KAYOLE
            ),  # 00:00:00 today -> 23:59:59 yesterday
            closed(
                "C3", midnight(-1, -3600), midnight(0), "10", owner="b.wanjiku", sla_status="BREACHED", **PIPELINE
            ),  # the other way round
            closed(
                "O5",
                at(-47 * H - timedelta(minutes=59)),
                at(-1 * H),
                "47.98",
                owner="c.kamau",
                cluster="KAYOLE",
                assigned_team="East 1",
                sla_status="Compliant",
            ),
        ],
    ),
    (
        "more ties and team change",
        [
            *[
                opened(f"TIE_{name}", at(-10 * H - timedelta(seconds=s)), owner="d.mutua", **PIPELINE)
                for name, s in (("G", 17.9), ("F", 0.2))
            ],
            closed(
                "C6",
                midnight(-6, -3600),
                midnight(-6),
                "4",
                owner="a.otieno",
                sla_status="Compliant",
                cluster="Pipeline",
                assigned_team="East 9",
            ),
        ],
    ),
]
FIRST_FILE_AT = MIDNIGHT - timedelta(days=3)


def write_file(folder: Path, at_time: datetime, rows: list[dict[str, str]]) -> Path:
    path = folder / f"{at_time:%Y-%m-%dT%H-%M-%S}.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows({c: row.get(c, "") for c in COLUMNS} for row in rows)
    return path


def install_reference(conn: psycopg.Connection) -> None:
    """Migration 12's fn_inc_dashboard, as reporting.fn_inc_dashboard_reference."""
    conn.execute(
        function_as_created(
            "12_inc_engineer_closures.sql", "reporting.fn_inc_dashboard", "reporting.fn_inc_dashboard_reference"
        )
    )


@pytest.fixture
def loaded(db_url: str, tmp_path: Path) -> Iterator[tuple[str, list[Path]]]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        install_reference(conn)
        conn.execute(
            "INSERT INTO tickets.geo_clusters (cluster_key, cluster, latitude, longitude) "
            "VALUES ('kayole', 'Kayole', -1.273, 36.913)"
        )
    paths = [write_file(tmp_path, FIRST_FILE_AT + timedelta(hours=6 * n), rows) for n, (_, rows) in enumerate(STEPS)]
    yield db_url, paths


QUESTIONS: list[dict[str, Any]] = [
    *({"p_window": window} for window in ("today", "yesterday", "last_7_days", "last_30_days", "this_month")),
    {"p_window": "custom", "p_from": TODAY - timedelta(days=40), "p_to": TODAY + timedelta(days=1)},
    {"p_window": "custom", "p_from": TODAY - timedelta(days=6), "p_to": TODAY - timedelta(days=6)},
    {"p_window": "custom", "p_from": date(2001, 1, 1), "p_to": date(2001, 1, 2)},
    {"p_window": "last_30_days", "p_cluster": " kayole "},
    {"p_window": "last_30_days", "p_cluster": "PIPELINE", "p_status": "closed"},
    {"p_window": "last_7_days", "p_status": "open"},
    {"p_window": "today", "p_cluster": "Nowhere"},
    {"p_window": "last_30_days", "p_max_features": None},
    *({"p_window": "last_7_days", "p_max_features": n} for n in range(1, 16)),
    {"p_window": "today", "p_cluster": "kayole", "p_max_features": 3},
]


def differences(url: str) -> list[str]:
    found = []
    with psycopg.connect(url) as conn:
        for args in QUESTIONS:
            args = {**args, "p_now": ANCHOR}
            named = ", ".join(f"{name} => %({name})s" for name in args)
            fast, reference = conn.execute(
                f"SELECT reporting.fn_inc_dashboard({named})::text, "
                f"reporting.fn_inc_dashboard_reference({named})::text",
                args,
            ).fetchone()
            if fast != reference:
                found.append(f"{args}:\n  17: {fast}\n  12: {reference}")
    return found


def test_every_answer_matches_after_each_loaded_file(loaded: tuple[str, list[Path]]) -> None:
    url, paths = loaded
    settings = Settings(database_url=url)
    for path in paths:
        assert run_ingest(settings, apply=True, local_files=[path]).ok
        assert differences(url) == [], path.name


def test_answers_match_after_a_geometry_refresh(loaded: tuple[str, list[Path]]) -> None:
    url, paths = loaded
    settings = Settings(database_url=url)
    for path in paths:
        assert run_ingest(settings, apply=True, local_files=[path]).ok
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO tickets.geo_clusters (cluster_key, cluster, latitude, longitude) "
            "VALUES ('pipeline', 'Pipeline', -1.317, 36.896)"
        )
        moved = conn.execute("SELECT tickets.refresh_geometry(NULL, ARRAY['pipeline'])").fetchone()[0]
    assert moved > 0
    assert differences(url) == []


def test_the_questions_reach_the_cases_they_are_for(loaded: tuple[str, list[Path]]) -> None:
    """Guards the fixture: ties straddle the cap, medians see odd and even counts."""
    url, paths = loaded
    for path in paths:
        assert run_ingest(Settings(database_url=url), apply=True, local_files=[path]).ok
    with psycopg.connect(url) as conn:
        payload = conn.execute(
            "SELECT reporting.fn_inc_dashboard(p_window => 'last_30_days', p_max_features => NULL, p_now => %s)",
            (ANCHOR,),
        ).fetchone()[0]
    hours = [f["properties"]["hours_open"] for f in payload["open"]["features"]]
    assert hours.count(10.0) >= 5, hours
    ties = [f["id"] for f in payload["open"]["features"] if f["properties"]["hours_open"] == 10.0]
    assert ties == sorted(ties)
    closures = {e["owner"]: e["closures"] for e in payload["engineers"]["by_owner"]}
    assert {n % 2 for n in closures.values() if n} == {0, 1}
    assert any(h is not None and h < 0 for h in hours)  # a clock in the future
