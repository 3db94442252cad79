"""reporting.fn_dispatch_candidates against distances computed in Python, and `fleettickets dispatch`."""

from __future__ import annotations

import json
import math
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import psycopg
import pytest

from tests.crafted import EAT, ago, closed_ticket, insert, open_ticket
from tests.geodesic import geodesic_metres

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "schemas" / "dispatch-payload.schema.json").read_text())
NOW = datetime(2026, 6, 20, 12, 0, tzinfo=EAT)
CENTRE = (-1.2921, 36.8219)  # (lat, lng)
TIE_POINT = (-1.2900, 36.8200)
CENTROID = (-1.3500, 36.7500)  # many tickets placed at one cluster point
CLUSTERS = ("Kayole", "Umoja", "Pipeline")
TEAMS = ("Team A", "Team B")
STATE_RANK = {"breached": 0, "at_risk": 1}


@dataclass(frozen=True)
class Ticket:
    ticket_id: str
    lat: float | None
    lng: float | None
    cluster: str
    team: str
    state: str
    hours: float | None

    def metres(self, lat: float, lng: float) -> float:
        assert self.lat is not None and self.lng is not None
        return geodesic_metres(lat, lng, self.lat, self.lng)


def sla(hours: float | None) -> str:
    if hours is None:
        return "unknown"
    return "breached" if hours > 48 else "at_risk" if hours >= 36 else "within"


def generate(conn: psycopg.Connection) -> list[Ticket]:
    """Open tickets with and without a point, three at one point, and closed ones placed to tempt."""
    rng = random.Random(20260620)
    tickets = []

    def add(ticket_id: str, point: tuple[float, float] | None, hours: float | None, is_open: bool = True) -> None:
        cluster, team = CLUSTERS[rng.randrange(3)], TEAMS[rng.randrange(2)]
        fields = {"cluster": cluster, "assigned_team": team, "location_name": f"NW_{ticket_id}"}
        if point:
            fields.update(latitude=f"{point[0]:.6f}", longitude=f"{point[1]:.6f}")
        if hours is not None:
            fields["created_at_service"] = ago(NOW, hours=hours)
        insert(conn, ticket_id, open_ticket(**fields) if is_open else closed_ticket(**fields))
        if is_open:
            lat, lng = (round(point[0], 6), round(point[1], 6)) if point else (None, None)
            tickets.append(Ticket(ticket_id, lat, lng, cluster, team, sla(hours), hours))

    for n in range(400):
        point = (CENTRE[0] + rng.uniform(-0.12, 0.12), CENTRE[1] + rng.uniform(-0.12, 0.12))
        add(f"WOT{n:04d}", point, None if n % 17 == 0 else rng.uniform(0.5, 120))
    for n in (3, 1, 2):  # inserted out of order: ties go to the lower ticket_id
        add(f"TIE{n}", TIE_POINT, 50.0)
    for n in rng.sample(range(70), 70):
        add(f"GROUP{n:02d}", CENTROID, rng.uniform(1, 90))
    for n in range(25):
        add(f"NOPOINT{n:02d}", None, rng.uniform(1, 90))
    for n in range(40):
        point = (CENTRE[0] + rng.uniform(-0.01, 0.01), CENTRE[1] + rng.uniform(-0.01, 0.01))
        add(f"CLOSED{n:02d}", point, 80.0, is_open=False)
    add("CLOSED_AT_CENTRE", CENTRE, 80.0, is_open=False)
    add("CLOSED_AT_TIE", TIE_POINT, 80.0, is_open=False)
    return tickets


@pytest.fixture(scope="module")
def world(module_db_url: str) -> Iterator[tuple[psycopg.Connection, list[Ticket]]]:
    with psycopg.connect(module_db_url, autocommit=True) as conn:
        tickets = generate(conn)
        conn.execute("ANALYZE tickets.inc")
        yield conn, tickets


def dispatch(conn: psycopg.Connection, lat: float, lng: float, **args: Any) -> dict[str, Any]:
    names = "".join(f", {k} => %({k})s" for k in args)
    query = f"SELECT reporting.fn_dispatch_candidates(p_lng => %(lng)s, p_lat => %(lat)s{names}, p_now => %(now)s)"
    return conn.execute(query, {"lng": lng, "lat": lat, "now": NOW, **args}).fetchone()[0]


def matching(tickets: list[Ticket], cluster: str | None = None, team: str | None = None) -> list[Ticket]:
    return [
        t
        for t in tickets
        if (cluster is None or t.cluster.lower() == cluster.strip().lower())
        and (team is None or t.team.lower() == team.strip().lower())
    ]


def expected(
    tickets: list[Ticket],
    lat: float,
    lng: float,
    limit: int = 10,
    within_m: int | None = None,
    cluster: str | None = None,
    team: str | None = None,
    order: str = "distance",
) -> list[tuple[str, int]]:
    placed = [(t, t.metres(lat, lng)) for t in matching(tickets, cluster, team) if t.lat is not None]
    if within_m is not None:
        placed = [(t, d) for t, d in placed if d <= within_m]
    rank = (lambda t: STATE_RANK.get(t.state, 2)) if order == "urgency" else (lambda t: 0)
    placed.sort(key=lambda pair: (rank(pair[0]), pair[1], pair[0].ticket_id))
    return [(t.ticket_id, round(d)) for t, d in placed[:limit]]


def got(payload: dict[str, Any]) -> list[tuple[str, int]]:
    return [(c["ticket_id"], c["metres"]) for c in payload["candidates"]]


def same(answer: list[tuple[str, int]], model: list[tuple[str, int]]) -> bool:
    """Same tickets in the same order; metres may differ by 1 where a distance sits on a half metre."""
    return [t for t, _ in answer] == [t for t, _ in model] and all(
        abs(a - b) <= 1 for (_, a), (_, b) in zip(answer, model, strict=True)
    )


ORIGINS = [
    (CENTRE[0] + random.Random(k).uniform(-0.1, 0.1), CENTRE[1] + random.Random(-k).uniform(-0.1, 0.1))
    for k in range(12)
]


@pytest.mark.parametrize("origin", ORIGINS)
@pytest.mark.parametrize("limit", [1, 10, 37, 100])
def test_nearest_first_matches_geodesic_distances(world: Any, origin: tuple[float, float], limit: int) -> None:
    conn, tickets = world
    payload = dispatch(conn, *origin, p_limit=limit)
    answer, model = got(payload), expected(tickets, *origin, limit=limit)
    assert same(answer, model), (answer, model)


def test_every_field_of_a_candidate(world: Any) -> None:
    conn, tickets = world
    payload = dispatch(conn, *CENTRE, p_limit=3)
    by_id = {t.ticket_id: t for t in tickets}
    assert payload["order"] == "distance"
    assert payload["origin"] == {"lat": CENTRE[0], "lng": CENTRE[1]}
    assert payload["filters"] == {"limit": 3, "within_m": None, "cluster": None, "team": None}
    assert payload["generated_at"] == "2026-06-20T12:00:00+03:00"
    for candidate in payload["candidates"]:
        ticket = by_id[candidate["ticket_id"]]
        assert set(candidate) == {
            "ticket_id",
            "cluster",
            "location_name",
            "assigned_team",
            "hours_open",
            "sla_state",
            "sla_clock_source",
            "metres",
            "geo_source",
            "lng",
            "lat",
        }
        assert (candidate["lat"], candidate["lng"]) == (ticket.lat, ticket.lng)
        assert (candidate["cluster"], candidate["assigned_team"]) == (ticket.cluster, ticket.team)
        assert candidate["location_name"] == f"NW_{ticket.ticket_id}"
        assert candidate["sla_state"] == ticket.state
        assert candidate["geo_source"] == "feed"
        assert isinstance(candidate["metres"], int)
        if ticket.hours is None:
            assert (candidate["hours_open"], candidate["sla_clock_source"]) == (None, None)
        else:
            assert math.isclose(candidate["hours_open"], ticket.hours, abs_tol=0.006)
            assert candidate["sla_clock_source"] == "created_at_service"


def test_ties_go_to_the_lower_ticket_id(world: Any) -> None:
    conn, tickets = world
    assert got(dispatch(conn, *TIE_POINT, p_limit=2)) == [("TIE1", 0), ("TIE2", 0)]
    assert [t for t, _ in got(dispatch(conn, *TIE_POINT, p_limit=4))][:3] == ["TIE1", "TIE2", "TIE3"]


@pytest.mark.parametrize("limit", [1, 5, 69, 70, 71, 100])
def test_many_tickets_at_one_point_are_ranked_by_ticket_id(world: Any, limit: int) -> None:
    conn, tickets = world
    answer = got(dispatch(conn, *CENTROID, p_limit=limit))
    group = [(f"GROUP{n:02d}", 0) for n in range(70)]
    assert answer[:70] == group[:limit]
    assert same(answer, expected(tickets, *CENTROID, limit=limit))


def test_closed_tickets_and_tickets_without_a_point_are_never_offered(world: Any) -> None:
    conn, tickets = world
    offered = {
        c["ticket_id"] for origin in (CENTRE, TIE_POINT) for c in dispatch(conn, *origin, p_limit=100)["candidates"]
    }
    assert not {t for t in offered if t.startswith(("CLOSED", "NOPOINT"))}
    assert dispatch(conn, *CENTRE)["unplaced_open"] == 25


@pytest.mark.parametrize(
    "cluster, team",
    [(" kayole ", None), ("PIPELINE", None), (None, "team a"), ("Umoja", "Team B"), ("Nowhere", None)],
)
def test_filters_apply_to_candidates_and_to_the_unplaced_count(
    world: Any, cluster: str | None, team: str | None
) -> None:
    conn, tickets = world
    payload = dispatch(conn, *CENTRE, p_limit=25, p_cluster=cluster, p_team=team)
    assert same(got(payload), expected(tickets, *CENTRE, limit=25, cluster=cluster, team=team))
    unplaced = [t for t in matching(tickets, cluster, team) if t.lat is None]
    assert payload["unplaced_open"] == len(unplaced)
    assert payload["filters"]["cluster"] == (cluster.strip() if cluster else None)


def test_the_radius_edge_is_inclusive(world: Any) -> None:
    conn, tickets = world
    placed = sorted((t.metres(*CENTRE), t.ticket_id) for t in tickets if t.lat is not None)
    # a ticket whose distance is clear of whole metres, so both sides of the edge are unambiguous
    distance, ticket_id = next(p for p in placed[20:] if 0.05 < p[0] % 1 < 0.95)
    inside = dispatch(conn, *CENTRE, p_limit=100, p_within_m=math.ceil(distance))
    outside = dispatch(conn, *CENTRE, p_limit=100, p_within_m=math.floor(distance))
    assert ticket_id in [t for t, _ in got(inside)]
    assert ticket_id not in [t for t, _ in got(outside)]
    for radius in (250, 1000, math.ceil(distance), 4000):
        answer = got(dispatch(conn, *CENTRE, p_limit=100, p_within_m=radius))
        assert same(answer, expected(tickets, *CENTRE, limit=100, within_m=radius)), radius


@pytest.mark.parametrize("radius", [1500, 3000, 6000])  # 6 km holds some 60 tickets of every state
def test_urgency_is_breached_then_at_risk_then_the_rest_nearest_first(world: Any, radius: int) -> None:
    conn, tickets = world
    payload = dispatch(conn, *CENTRE, p_limit=100, p_within_m=radius, p_order="urgency")
    answer = got(payload)
    assert same(answer, expected(tickets, *CENTRE, limit=100, within_m=radius, order="urgency"))
    states = [c["sla_state"] for c in payload["candidates"]]
    assert states == sorted(states, key=lambda s: STATE_RANK.get(s, 2))
    if radius == 6000:
        assert {"breached", "at_risk", "within", "unknown"} <= set(states)


def test_a_short_list_when_few_tickets_match(world: Any) -> None:
    conn, tickets = world
    payload = dispatch(conn, *CENTRE, p_limit=100, p_cluster="Umoja", p_team="Team A")
    model = expected(tickets, *CENTRE, limit=100, cluster="Umoja", team="Team A")
    assert len(model) < 100
    assert same(got(payload), model)


@pytest.mark.parametrize(
    "args, index",
    # with no filter any of the open-ticket GiST indexes serves the walk (a leading
    # filter column left free); with one, the index that leads with it
    [({}, r"inc_open_\w*geog_idx"), ({"p_cluster": "kayole"}, "inc_open_cluster_geog_idx")],
)
def test_nearest_tickets_come_from_the_gist_index(world: Any, args: dict[str, str], index: str) -> None:
    """The plan walks an open-ticket GiST index in distance order; no sort of every open ticket."""
    conn, _ = world
    plans: list[str] = []
    conn.add_notice_handler(lambda d: plans.append(d.message_primary or ""))
    try:
        conn.execute("LOAD 'auto_explain'")
        conn.execute("SET auto_explain.log_min_duration = 0")
        conn.execute("SET auto_explain.log_nested_statements = on")
        conn.execute("SET client_min_messages = log")
        dispatch(conn, *CENTRE, p_limit=10, **args)
    finally:
        conn.execute("RESET client_min_messages")
        conn.execute("RESET auto_explain.log_min_duration")
    plan = next(p for p in plans if "ORDER BY o.geog <-> v_origin" in p)
    walk = plan[plan.index("CTE walk") : plan.index("InitPlan")]
    assert re.search(f"Index Scan using {index} ", walk), plan
    assert "Order By: ((geog)::geography <->" in walk
    assert "Sort" not in walk


@pytest.mark.parametrize(
    "args, message",
    [
        ({"p_lat": 91.0}, "p_lat must be between -90 and 90 (got 91)"),
        ({"p_lat": -90.5}, "p_lat must be between -90 and 90 (got -90.5)"),
        ({"p_lng": 180.01}, "p_lng must be between -180 and 180 (got 180.01)"),
        ({"p_lng": float("nan")}, "p_lng must be between -180 and 180 (got NaN)"),
        ({"p_limit": 0}, "p_limit must be between 1 and 100 (got 0)"),
        ({"p_limit": 101}, "p_limit must be between 1 and 100 (got 101)"),
        ({"p_within_m": 0}, "p_within_m must be at least 1 (got 0)"),
        ({"p_order": "nearest"}, "unknown order 'nearest'"),
        ({"p_order": "urgency"}, "order 'urgency' needs p_within_m"),
    ],
)
def test_bad_arguments_raise_22023_with_a_hint(world: Any, args: dict[str, Any], message: str) -> None:
    conn, _ = world
    call = {"p_lat": CENTRE[0], "p_lng": CENTRE[1], **args}
    lat, lng = call.pop("p_lat"), call.pop("p_lng")
    with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
        dispatch(conn, lat, lng, **call)
    assert caught.value.diag.message_primary == message
    assert caught.value.diag.message_hint


def run(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleettickets", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": url},
        cwd="/",
    )


def test_dispatch_command_prints_the_payload_or_a_table(world: Any, module_db_url: str) -> None:
    conn, tickets = world
    result = run("dispatch", "--near", f"{CENTRE[0]},{CENTRE[1]}", "--limit", "5", "--json", url=module_db_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1
    payload = json.loads(result.stdout)
    assert same(got(payload), expected(tickets, *CENTRE, limit=5))  # distances do not depend on the hour
    table = run(
        "dispatch",
        "--near",
        f"{TIE_POINT[0]}, {TIE_POINT[1]}",
        "--limit",
        "2",
        "--within-km",
        "0.5",
        "--order",
        "urgency",
        url=module_db_url,
    )
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:2] == ["ticket", "metres"]
    assert [line.split()[:2] for line in lines[1:3]] == [["TIE1", "0"], ["TIE2", "0"]]
    assert lines[-1] == "25 open ticket(s) matching the filters have no point and were not offered"


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--near", "36.82"],
            "Error: --near '36.82' is not LAT,LNG: give two decimal numbers, "
            "latitude first, e.g. --near -1.2921,36.8219",
        ),
        (
            ["--near", "136.8,-1.29"],
            "Error: --near latitude must be between -90 and 90 (got 136.8). "
            "Latitude in decimal degrees (WGS 84); Nairobi is about -1.29. "
            "Check that latitude and longitude are not swapped.",
        ),
        (
            ["--near", "-1.29,36.82", "--limit", "500"],
            "Error: --limit must be between 1 and 100 (got 500). Ask for at most 100 candidates; the default is 10.",
        ),
        (
            ["--near", "-1.29,36.82", "--order", "urgency"],
            "Error: --order urgency needs --within-km: it ranks every ticket inside that radius",
        ),
        (["--near", "-1.29,36.82", "--within-km", "0"], "Error: --within-km must be more than 0 (got 0)"),
    ],
)
def test_dispatch_bad_arguments_are_one_line_and_exit_2(module_db_url: str, args: list[str], message: str) -> None:
    result = run("dispatch", *args, url=module_db_url)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.strip() == message


def test_hours_and_states_follow_p_now(world: Any) -> None:
    conn, tickets = world
    later = dispatch(conn, *TIE_POINT, p_limit=1)["candidates"][0]
    assert (later["ticket_id"], later["hours_open"], later["sla_state"]) == ("TIE1", 50.0, "breached")
    earlier = conn.execute(
        "SELECT reporting.fn_dispatch_candidates(%s, %s, p_limit => 1, p_now => %s)",
        (TIE_POINT[1], TIE_POINT[0], NOW - timedelta(hours=10)),
    ).fetchone()[0]["candidates"][0]
    assert (earlier["hours_open"], earlier["sla_state"]) == (40.0, "at_risk")


def test_payloads_and_the_documented_example_match_the_schema(world: Any) -> None:
    conn, _ = world
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for args in (
        {},
        {"p_limit": 100},
        {"p_within_m": 3000, "p_order": "urgency", "p_cluster": "Kayole"},
        {"p_cluster": "Nowhere", "p_team": "Team A"},
    ):
        validator.validate(dispatch(conn, *CENTRE, **args))
    doc = (ROOT / "docs" / "dashboard-api-contract.md").read_text()
    section = doc[doc.index("## Dispatch") : doc.index("## Over HTTP")]
    example = re.search(r"```json\n(.*?)```", section, re.S)
    assert example
    validator.validate(json.loads(example.group(1)))
    for field in SCHEMA["properties"]["candidates"]["items"]["properties"]:
        assert f".{field}`" in section or f"`candidates[].{field}" in section, field
