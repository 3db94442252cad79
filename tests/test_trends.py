"""reporting.fn_inc_trends and reporting.fn_team_closures on a seeded ten-week stream.

Every trend period must equal the dashboard over the same custom window, the
series must add up to the dashboard over the whole range, and the teams'
closures must add up to the dashboard's closed_in_window, for random ranges,
grains and clusters. The refactored dashboard must answer exactly as
migration 17's body did.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import psycopg
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from fleettickets import clock
from fleettickets.ingest import run_ingest
from fleettickets.settings import Settings
from tests.crafted import EAT
from tests.fix_clock import TEST_NOW
from tests.migration_text import function_as_created
from tests.trend_stream import DAYS, first_file_at, write_file, write_trend_stream

TODAY = TEST_NOW.astimezone(EAT).date()
FIRST_DAY = first_file_at(TODAY).date()
ROOT = Path(__file__).resolve().parent.parent
TRENDS_SCHEMA = json.loads((ROOT / "schemas" / "trends-payload.schema.json").read_text())
TEAMS_SCHEMA = json.loads((ROOT / "schemas" / "team-closures-payload.schema.json").read_text())
CLUSTERS = (None, "kayole", " Pipeline ", "UMOJA", "nowhere")
SAME = ("created", "closed", "mttr_minutes", "sla_compliance", "contract_48h")


@pytest.fixture(scope="module")
def trend_url(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("trend_stream")
    report = run_ingest(
        Settings(database_url=module_db_url), apply=True, local_files=write_trend_stream(folder, TODAY), now=TEST_NOW
    )
    assert report.ok
    return module_db_url


@pytest.fixture(scope="module")
def conn(trend_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(trend_url, autocommit=True) as connection:
        # The bodies that recounted tickets.inc and closure_events on each call, before the rollups.
        connection.execute(
            function_as_created("31_trends_and_team_closures.sql", "reporting.fn_team_closures", "pg_temp.teams_31")
        )
        connection.execute(
            function_as_created("37_trends_daily_rollup.sql", "reporting.fn_inc_trends", "pg_temp.trends_37")
        )
        yield connection


def call(conn: psycopg.Connection, function: str, **args: Any) -> Any:
    args.setdefault("p_now", TEST_NOW)
    named = ", ".join(f"{name} => %({name})s" for name in args)
    return conn.execute(f"SELECT reporting.{function}({named})", args).fetchone()[0]


def dashboard_metrics(conn: psycopg.Connection, first: date, last: date, cluster: str | None) -> dict[str, Any]:
    payload = call(
        conn, "fn_inc_dashboard", p_window="custom", p_from=first, p_to=last, p_cluster=cluster, p_max_features=1
    )
    metrics = payload["metrics"]
    return {
        "created": metrics["created_in_window"],
        "closed": metrics["closed_in_window"],
        **{k: metrics[k] for k in SAME[2:]},
    }


def check_range(conn: psycopg.Connection, first: date, last: date, grain: str, cluster: str | None) -> None:
    trends = call(conn, "fn_inc_trends", p_from=first, p_to=last, p_grain=grain, p_cluster=cluster)
    jsonschema.Draft202012Validator(TRENDS_SCHEMA).validate(trends)
    series = trends["series"]
    assert series[0]["period_start"] == first.isoformat()
    assert series[-1]["period_end"] == last.isoformat()
    for before, after in zip(series, series[1:], strict=False):
        assert date.fromisoformat(after["period_start"]) == date.fromisoformat(before["period_end"]) + timedelta(1)
    for entry in series:
        start, end = date.fromisoformat(entry["period_start"]), date.fromisoformat(entry["period_end"])
        if grain == "week":
            assert start == first or start.isoweekday() == 1
        if grain == "month":
            assert start == first or start.day == 1
        assert {k: entry[k] for k in SAME} == dashboard_metrics(conn, start, end, cluster), entry
    whole = dashboard_metrics(conn, first, last, cluster)
    assert sum(e["created"] for e in series) == whole["created"]
    assert sum(e["closed"] for e in series) == whole["closed"]
    assert sum(e["mttr_minutes"]["samples"] for e in series) == whole["mttr_minutes"]["samples"]
    for section, keys in (
        ("sla_compliance", ("compliant", "breached", "unknown")),
        ("contract_48h", ("within", "breached", "unknown")),
    ):
        assert {k: sum(e[section][k] for e in series) for k in keys} == {k: whole[section][k] for k in keys}
    teams = call(conn, "fn_team_closures", p_from=first, p_to=last, p_cluster=cluster)
    jsonschema.Draft202012Validator(TEAMS_SCHEMA).validate(teams)
    assert sum(t["closed"] for t in teams["teams"]) == whole["closed"]
    # the rollups answer exactly as the recounts did, to the byte
    args = {"p_from": first, "p_to": last, "p_cluster": cluster, "p_now": TEST_NOW, "p_grain": grain}
    teams_now, teams_before, trends_now, trends_before = conn.execute(
        "SELECT reporting.fn_team_closures(%(p_from)s, %(p_to)s, %(p_cluster)s, %(p_now)s)::text, "
        "pg_temp.teams_31(%(p_from)s, %(p_to)s, %(p_cluster)s, %(p_now)s)::text, "
        "reporting.fn_inc_trends(%(p_from)s, %(p_to)s, %(p_grain)s, %(p_cluster)s, %(p_now)s)::text, "
        "pg_temp.trends_37(%(p_from)s, %(p_to)s, %(p_grain)s, %(p_cluster)s, %(p_now)s)::text",
        args,
    ).fetchone()
    assert (teams_now, trends_now) == (teams_before, trends_before), args


@hypothesis_settings(
    max_examples=20,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    offset=st.integers(-DAYS - 6, 2),
    grain_and_length=st.sampled_from(("day", "week", "month")).flatmap(
        lambda g: st.tuples(st.just(g), st.integers(0, {"day": 30, "week": 60, "month": 80}[g]))
    ),
    cluster=st.sampled_from(CLUSTERS),
)
def test_every_period_is_the_dashboard_over_it(
    conn: psycopg.Connection, offset: int, grain_and_length: tuple[str, int], cluster: str | None
) -> None:
    grain, length = grain_and_length
    first = TODAY + timedelta(days=offset)
    check_range(conn, first, first + timedelta(days=length), grain, cluster)


@pytest.mark.parametrize("grain", ["day", "week", "month"])
def test_the_whole_stream_adds_up(conn: psycopg.Connection, grain: str) -> None:
    check_range(conn, FIRST_DAY - timedelta(days=6), TODAY, grain, None)


def test_the_stream_reaches_the_cases_the_property_is_for(conn: psycopg.Connection) -> None:
    """Guards the seed: closures, re-assignments after closure, teams spelt several ways."""
    teams = call(conn, "fn_team_closures", p_from=FIRST_DAY - timedelta(days=6), p_to=TODAY)["teams"]
    assert [t["team"] for t in teams][-1] is None
    assert {t["team"].lower() if t["team"] else None for t in teams} == {"east 1", "east 2", "west 9", None}
    assert all(t["closed"] > 20 for t in teams)
    moved = conn.execute(
        "SELECT count(*) FROM tickets.inc i JOIN LATERAL (SELECT e.assigned_team FROM tickets.closure_events e "
        "WHERE e.ticket_id = i.ticket_id ORDER BY e.observed_at DESC LIMIT 1) e ON true "
        "WHERE NOT i.is_actionable AND e.assigned_team IS DISTINCT FROM i.assigned_team"
    ).fetchone()[0]
    assert moved > 10


def test_week_and_month_periods_are_clipped_to_the_range(conn: psycopg.Connection) -> None:
    first, last = date(2026, 4, 29), date(2026, 6, 2)  # a Wednesday to a Tuesday
    weeks = call(conn, "fn_inc_trends", p_from=first, p_to=last, p_grain="week")["series"]
    assert [(e["period_start"], e["period_end"]) for e in weeks][:2] == [
        ("2026-04-29", "2026-05-03"),
        ("2026-05-04", "2026-05-10"),
    ]
    assert (weeks[-1]["period_start"], weeks[-1]["period_end"]) == ("2026-06-01", "2026-06-02")
    months = call(conn, "fn_inc_trends", p_from=first, p_to=last, p_grain=" Month ")
    assert months["grain"] == "month"
    assert [(e["period_start"], e["period_end"]) for e in months["series"]] == [
        ("2026-04-29", "2026-04-30"),
        ("2026-05-01", "2026-05-31"),
        ("2026-06-01", "2026-06-02"),
    ]


def test_backlog_is_null_before_the_first_capture_and_counted_after(conn: psycopg.Connection) -> None:
    series = call(
        conn, "fn_inc_trends", p_from=FIRST_DAY - timedelta(days=3), p_to=FIRST_DAY + timedelta(days=2), p_grain="day"
    )["series"]
    assert [e["backlog_end"] for e in series[:3]] == [None, None, None]
    assert [e["breached_end"] for e in series[:3]] == [None, None, None]
    after = series[3:]
    assert all(isinstance(e["backlog_end"], int) and e["backlog_end"] > 0 for e in after)
    rows = dict(
        conn.execute(
            "SELECT snapshot_date, open_total FROM tickets.inc_daily_snapshot WHERE snapshot_date BETWEEN %s AND %s",
            (FIRST_DAY, FIRST_DAY + timedelta(days=2)),
        ).fetchall()
    )
    assert [e["backlog_end"] for e in after] == [rows[date.fromisoformat(e["period_end"])] for e in after]


def test_a_cluster_backlog_comes_from_the_daily_cluster_counts(conn: psycopg.Connection) -> None:
    day = FIRST_DAY + timedelta(days=10)
    entry = call(conn, "fn_inc_trends", p_from=day, p_to=day, p_cluster="KAYOLE")["series"][0]
    by_cluster = conn.execute(
        "SELECT open_by_cluster FROM tickets.inc_daily_snapshot WHERE snapshot_date = %s", (day,)
    ).fetchone()[0]
    assert entry["backlog_end"] == sum(n for name, n in by_cluster.items() if name.lower() == "kayole") > 0


def test_each_clusters_breached_end_adds_up_and_matches_a_recompute(conn: psycopg.Connection) -> None:
    first, last = FIRST_DAY - timedelta(days=2), TODAY
    whole = call(conn, "fn_inc_trends", p_from=first, p_to=last)["series"]
    keys = sorted(
        {
            name.lower()
            for (row,) in conn.execute("SELECT open_by_cluster FROM tickets.inc_daily_snapshot")
            for name in row
        }
    )
    per_cluster = {key: call(conn, "fn_inc_trends", p_from=first, p_to=last, p_cluster=key)["series"] for key in keys}
    # The daily rows recomputed from the versions alone, as a rebuild would write them.
    recomputed = dict(
        conn.execute(
            "SELECT snapshot_date, breached_by_cluster FROM tickets.compute_daily_snapshots(%s, %s, %s)",
            (first, last, TEST_NOW),
        ).fetchall()
    )
    assert len(keys) >= 3 and len(recomputed) == len(whole) - 2
    for n, entry in enumerate(whole):
        day = date.fromisoformat(entry["period_end"])
        figures = [per_cluster[key][n]["breached_end"] for key in keys]
        if day < FIRST_DAY:
            assert entry["breached_end"] is None and figures == [None] * len(keys)
            continue
        assert sum(figures) == entry["breached_end"], day
        assert figures == [sum(v for k, v in recomputed[day].items() if k.lower() == key) for key in keys], day
    assert sum(e["breached_end"] or 0 for e in per_cluster["kayole"]) > 0


def test_the_dashboard_answers_as_migration_17_did(conn: psycopg.Connection) -> None:
    conn.execute(
        function_as_created("17_inc_dashboard_speed.sql", "reporting.fn_inc_dashboard", "pg_temp.dashboard_17")
    )
    questions: list[dict[str, Any]] = [
        {"p_window": w} for w in ("today", "yesterday", "last_7_days", "last_30_days", "this_month")
    ]
    questions += [
        {"p_window": "custom", "p_from": FIRST_DAY - timedelta(days=9), "p_to": TODAY, **extra}
        for extra in (
            {},
            {"p_cluster": "kayole"},
            {"p_status": "closed"},
            {"p_max_features": 5},
            {"p_max_features": None},
            {"p_cluster": "nowhere"},
        )
    ]
    for args in questions:
        args["p_now"] = TEST_NOW
        named = ", ".join(f"{name} => %({name})s" for name in args)
        new, old = conn.execute(
            f"SELECT reporting.inc_dashboard_payload({named})::text, pg_temp.dashboard_17({named})::text", args
        ).fetchone()
        assert new == old, args


# --- team credit ---------------------------------------------------------------


def test_credit_stays_with_the_team_that_closed_the_ticket(db_url: str, tmp_path: Path) -> None:
    """A later export moves closed tickets to another team: their closures do not move."""
    day = TODAY - timedelta(days=3)
    at = [datetime(day.year, day.month, day.day, 7, tzinfo=EAT) + timedelta(hours=6 * n) for n in range(3)]
    created = "2026-06-10 08:00:00"

    def row(ticket: str, team: str, closed: bool, cluster: str = "Kayole") -> dict[str, str]:
        return {
            "ticket_id": ticket,
            "normalized_status": "closed" if closed else "open",
            "is_actionable": "false" if closed else "true",
            "cluster": cluster,
            "assigned_team": team,
            "created_at_service": created,
            "first_seen_at": created,
            "mttr": "2",
            "sla_status": "Compliant" if closed else "",
            "closed_at": f"{day} 10:00:00" if closed else "",
        }

    files = [
        write_file(
            tmp_path,
            at[0],
            [
                row("A1", "East 1", False),
                row("A2", "East 1", False),
                row("A3", "East 1", False),
                row("B1", "West 9", False),
                row("N1", "", False),
            ],
        ),
        write_file(
            tmp_path,
            at[1],
            [row("A1", "East 1", True), row("A2", " EAST 1 ", True), row("A3", "East 1", True), row("N1", "", True)],
        ),
        # the re-assignment: A1 and A2 now belong to West 9, still closed; B1 closes for West 9
        write_file(tmp_path, at[2], [row("A1", "West 9", True), row("A2", "west 9", True), row("B1", "West 9", True)]),
    ]
    assert run_ingest(Settings(database_url=db_url), apply=True, local_files=files, now=TEST_NOW).ok
    with psycopg.connect(db_url, autocommit=True) as c:
        teams = call(c, "fn_team_closures", p_from=day, p_to=day)
        dashboard = call(c, "fn_inc_dashboard", p_window="custom", p_from=day, p_to=day)
    assert [(t["team"], t["closed"]) for t in teams["teams"]] == [("East 1", 3), ("West 9", 1), (None, 1)]
    assert teams["teams"][0]["sla_compliance"] == {"compliant": 3, "breached": 0, "unknown": 0, "rate": 1.0}
    # today's assigned_team says otherwise: that is what the dashboard's by_team reports
    assert {t["assigned_team"]: t["closures"] for t in dashboard["engineers"]["by_team"]} == {
        "West 9": 2,
        "west 9": 1,
        "East 1": 1,
        None: 1,
    }
    assert dashboard["metrics"]["closed_in_window"] == sum(t["closed"] for t in teams["teams"]) == 5


def test_a_ticket_reopened_and_closed_again_is_credited_to_its_second_closer(db_url: str, tmp_path: Path) -> None:
    """The closure a window counts is the ticket's current one: the team that held it when that one was seen."""
    day = TODAY - timedelta(days=3)
    at = [datetime(day.year, day.month, day.day, 7, tzinfo=EAT) + timedelta(hours=4 * n) for n in range(5)]

    def row(team: str, closed_at: str | None) -> dict[str, str]:
        return {
            "ticket_id": "R1",
            "normalized_status": "closed" if closed_at else "open",
            "is_actionable": "false" if closed_at else "true",
            "cluster": "Kayole",
            "assigned_team": team,
            "created_at_service": "2026-06-10 08:00:00",
            "first_seen_at": "2026-06-10 08:00:00",
            "mttr": "2",
            "sla_status": "Compliant" if closed_at else "",
            "closed_at": closed_at or "",
        }

    files = [
        write_file(tmp_path, moment, [row(team, closed)])
        for moment, (team, closed) in zip(
            at,
            [
                ("East 1", None),
                ("East 1", f"{day} 10:00:00"),  # East 1 closes it
                ("West 9", None),  # reopened, handed to West 9
                ("West 9", f"{day} 18:00:00"),  # West 9 closes it again
                ("East 2", f"{day} 18:00:00"),  # and a later export moves the closed ticket on: credit stays
            ],
            strict=True,
        )
    ]
    assert run_ingest(Settings(database_url=db_url), apply=True, local_files=files, now=TEST_NOW).ok
    with psycopg.connect(db_url, autocommit=True) as c:
        teams = call(c, "fn_team_closures", p_from=day, p_to=day)["teams"]
        events = c.execute(
            "SELECT assigned_team FROM tickets.closure_events WHERE ticket_id = 'R1' ORDER BY observed_at"
        ).fetchall()
    assert events == [("East 1",), ("West 9",)]  # two closures seen, each with the team that held it then
    assert [(t["team"], t["closed"], t["open_now"]) for t in teams] == [("West 9", 1, 0)]


def test_open_tickets_are_counted_by_their_team_now(db_url: str, tmp_path: Path) -> None:
    clock = "2026-06-12 08:00:00"  # over 48 hours before TEST_NOW
    rows = [
        {
            "ticket_id": f"O{n}",
            "normalized_status": "open",
            "is_actionable": "true",
            "cluster": "Umoja",
            "assigned_team": team,
            "created_at_service": clock if n % 2 else "2026-06-15 07:00:00",
        }
        for n, team in enumerate(("East 2", "east 2 ", "East 2", ""))
    ]
    path = write_file(tmp_path, datetime(2026, 6, 15, 7, tzinfo=EAT), rows)
    assert run_ingest(Settings(database_url=db_url), apply=True, local_files=[path], now=TEST_NOW).ok
    with psycopg.connect(db_url, autocommit=True) as c:
        teams = call(c, "fn_team_closures", p_from=TODAY, p_to=TODAY, p_cluster="umoja")["teams"]
        elsewhere = call(c, "fn_team_closures", p_from=TODAY, p_to=TODAY, p_cluster="kayole")["teams"]
    assert [(t["team"], t["closed"], t["open_now"], t["open_breached_now"]) for t in teams] == [
        ("East 2", 0, 3, 1),
        (None, 0, 1, 1),
    ]
    assert teams[0]["mttr_minutes"] == {"median": None, "p90": None, "samples": 0}
    assert teams[0]["sla_compliance"]["rate"] is None
    assert elsewhere == []


# --- refusals ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "args", "names"),
    [
        ("fn_inc_trends", {"p_from": date(2026, 6, 1), "p_to": date(2026, 6, 2), "p_grain": "fortnight"}, "p_grain"),
        ("fn_inc_trends", {"p_from": date(2026, 6, 3), "p_to": date(2026, 6, 2)}, "p_from"),
        ("fn_inc_trends", {"p_from": None, "p_to": date(2026, 6, 2)}, "p_from"),
        ("fn_inc_trends", {"p_to": date(2026, 6, 2)}, "p_from"),
        ("fn_inc_trends", {"p_from": date(2026, 6, 2)}, "p_to"),
        ("fn_inc_trends", {"p_from": date(2025, 4, 1), "p_to": date(2026, 6, 4)}, "p_grain"),
        ("fn_inc_trends", {"p_from": date(2018, 1, 1), "p_to": date(2026, 6, 4), "p_grain": "week"}, "p_grain"),
        ("fn_inc_trends", {"p_from": date(2026, 6, 1), "p_to": date(2026, 6, 2), "p_now": None}, "p_now"),
        ("fn_team_closures", {"p_from": date(2026, 6, 3), "p_to": date(2026, 6, 2)}, "p_from"),
        ("fn_team_closures", {"p_from": date(2026, 6, 3)}, "p_to"),
    ],
)
def test_bad_arguments_are_refused_naming_them(conn: psycopg.Connection, function: str, args: dict, names: str) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
        call(conn, function, **args)
    assert names in caught.value.diag.message_primary
    assert caught.value.diag.message_hint


def test_four_hundred_periods_are_allowed(conn: psycopg.Connection) -> None:
    first = date(2025, 1, 1)
    series = call(conn, "fn_inc_trends", p_from=first, p_to=first + timedelta(days=399))["series"]
    assert len(series) == 400
    months = call(conn, "fn_inc_trends", p_from=date(1993, 1, 31), p_to=date(2026, 4, 1), p_grain="month")
    assert len(months["series"]) == 400


# --- the commands ----------------------------------------------------------------


def run(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": url, clock.NOW_ENV: TEST_NOW.isoformat()}
    return subprocess.run(
        [sys.executable, "-m", "fleettickets", *args], capture_output=True, text=True, env=env, cwd="/"
    )


def test_trends_json_is_the_payload_over_the_last_30_days(conn: psycopg.Connection, trend_url: str) -> None:
    result = run("trends", "--format", "json", "--cluster", "Kayole", url=trend_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1
    payload = json.loads(result.stdout)
    assert (payload["from"], payload["to"]) == ((TODAY - timedelta(days=29)).isoformat(), TODAY.isoformat())
    assert payload == call(conn, "fn_inc_trends", p_from=TODAY - timedelta(days=29), p_to=TODAY, p_cluster="Kayole")


def test_trends_table_and_csv(conn: psycopg.Connection, trend_url: str) -> None:
    first, last = TODAY - timedelta(days=40), TODAY
    series = call(conn, "fn_inc_trends", p_from=first, p_to=last, p_grain="week")["series"]
    table = run("trends", "--from", str(first), "--to", str(last), "--grain", "week", url=trend_url)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == [
        "period",
        "created",
        "closed",
        "ratio",
        "backlog",
        "breached",
        "mttr_median",
        "mttr_p90",
        "sla",
        "48h",
    ]
    assert len(lines) == len(series) + 1
    assert len({len(line) for line in lines}) == 1, "columns are aligned"
    first_row = lines[1].split()
    assert first_row[0] == f"{series[0]['period_start']}..{series[0]['period_end']}"
    assert first_row[2] == str(series[0]["closed"])
    rate = series[0]["sla_compliance"]["rate"]
    assert first_row[8] == ("-" if rate is None else f"{rate * 100:.1f}%")
    sheet = run("trends", "--from", str(first), "--to", str(last), "--grain", "week", "--format", "csv", url=trend_url)
    assert sheet.returncode == 0, sheet.stderr
    rows = list(csv.DictReader(io.StringIO(sheet.stdout)))
    assert [r["period_start"] for r in rows] == [e["period_start"] for e in series]
    for r, e in zip(rows, series, strict=True):
        assert int(r["closed"]) == e["closed"] and int(r["mttr_samples"]) == e["mttr_minutes"]["samples"]
        assert r["mttr_median_minutes"] == (
            "" if e["mttr_minutes"]["median"] is None else str(e["mttr_minutes"]["median"])
        )
        assert r["sla_rate"] == ("" if e["sla_compliance"]["rate"] is None else str(e["sla_compliance"]["rate"]))
        assert r["backlog_end"] == str(e["backlog_end"])


def test_teams_in_three_formats(conn: psycopg.Connection, trend_url: str) -> None:
    expected = call(conn, "fn_team_closures", p_from=TODAY - timedelta(days=29), p_to=TODAY)
    as_json = run("teams", "--format", "json", url=trend_url)
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == expected
    table = run("teams", url=trend_url).stdout.splitlines()
    assert table[0].split() == ["team", "closed", "mttr_median", "mttr_p90", "sla", "48h", "open_now", "open_breached"]
    assert [line.split("  ")[0].strip() for line in table[1:]] == [t["team"] or "(no team)" for t in expected["teams"]]
    assert len({len(line) for line in table}) == 1
    rows = list(csv.DictReader(io.StringIO(run("teams", "--format", "csv", url=trend_url).stdout)))
    assert [(r["team"], int(r["closed"]), int(r["open_now"])) for r in rows] == [
        (t["team"] or "", t["closed"], t["open_now"]) for t in expected["teams"]
    ]
    assert {"mttr_median_minutes", "sla_rate", "contract_48h_rate", "open_breached_now"} <= set(rows[0])


@pytest.mark.parametrize(
    "args, message",
    [
        (["trends", "--grain", "fortnight"], "Error: --grain must be one of day, week, month (got 'fortnight')"),
        (["trends", "--format", "xml"], "Error: --format must be one of table, json, csv (got 'xml')"),
        (["teams", "--from", "2026-02-30"], "Error: --from must be a day as YYYY-MM-DD (EAT), not '2026-02-30'"),
        (
            ["teams", "--from", "2026-06-10", "--to", "2026-06-01"],
            "Error: --from (2026-06-10) is after --to (2026-06-01); both days are inclusive",
        ),
        (
            ["trends", "--from", "2026-06-16"],
            "Error: --from (2026-06-16) is after --to (2026-06-15); both days are inclusive",
        ),
        (
            ["trends", "--from", "2025-01-01", "--to", "2026-06-15"],
            "Error: 2025-01-01 to 2026-06-15 is 531 periods of a day, more than 400: use a coarser --grain "
            "(week or month) or a shorter range",
        ),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2_without_a_database(args: list[str], message: str) -> None:
    result = run(*args, url="postgresql://nobody@127.0.0.1:1/unreachable")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.strip() == message


# --- the documented contract -----------------------------------------------------

DOC = (ROOT / "docs" / "dashboard-api-contract.md").read_text()


def doc_section(heading: str) -> str:
    start = DOC.index(f"\n## {heading}")
    return DOC[start : DOC.index("\n## ", start + 1)]


def field_paths(value: Any, prefix: str = "") -> set[str]:
    if isinstance(value, dict):
        paths: set[str] = set()
        for key, child in value.items():
            path = f"{prefix}.{key}" if prefix else key
            paths |= field_paths(child, path) or {path}
        return paths
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return set().union(*(field_paths(item, f"{prefix}[]") for item in value))
    return set()


@pytest.mark.parametrize(
    ("heading", "schema", "function"),
    [("Trends", TRENDS_SCHEMA, "fn_inc_trends"), ("Team closures", TEAMS_SCHEMA, "fn_team_closures")],
)
def test_the_documented_examples_and_every_real_field_match(
    conn: psycopg.Connection, heading: str, schema: dict, function: str
) -> None:
    jsonschema.Draft202012Validator.check_schema(schema)
    section = doc_section(heading)
    (example,) = re.findall(r"```json\n(.*?)\n```", section, flags=re.S)
    jsonschema.Draft202012Validator(schema).validate(json.loads(example))
    payload = call(conn, function, p_from=FIRST_DAY, p_to=TODAY)
    documented = set(re.findall(r"`([a-z_0-9.\[\]]+)`", section))
    assert sorted(field_paths(payload) - documented - {"freshness." + k for k in payload.get("freshness", {})}) == []


def test_credit_found_by_key_when_the_closure_was_observed_before_the_range(db_url: str, tmp_path: Path) -> None:
    """A closed_at later than the file that showed it (clock skew): the event predates the range."""
    day = TODAY - timedelta(days=3)
    shown = datetime(day.year, day.month, day.day, 7, tzinfo=EAT)
    row = {
        "ticket_id": "F1",
        "normalized_status": "closed",
        "is_actionable": "false",
        "cluster": "Kayole",
        "assigned_team": "East 2",
        "created_at_service": f"{day} 06:00:00",
        "closed_at": f"{day + timedelta(1)} 10:00:00",
    }
    files = [
        write_file(tmp_path, shown, [row]),
        write_file(tmp_path, shown + timedelta(days=2), [row | {"assigned_team": "West 9"}]),
    ]
    assert run_ingest(Settings(database_url=db_url), apply=True, local_files=files, now=TEST_NOW).ok
    with psycopg.connect(db_url, autocommit=True) as c:
        teams = call(c, "fn_team_closures", p_from=day + timedelta(1), p_to=day + timedelta(1))["teams"]
    assert [(t["team"], t["closed"]) for t in teams] == [("East 2", 1)]
