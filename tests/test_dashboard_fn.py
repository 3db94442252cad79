"""reporting.fn_inc_dashboard: windows in EAT, filters, metrics, GeoJSON and argument errors.

The crafted tickets are placed relative to ANCHOR, today at 14:30 EAT, and
the function is asked about that instant (p_now), so every number below is
exact on any day and at any time the suite runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.crafted import EAT, closed_ticket, eat_text, insert, open_ticket
from tests.fix_clock import TEST_NOW

pytestmark = pytest.mark.clock

TODAY = TEST_NOW.astimezone(EAT).date()
MIDNIGHT = datetime.combine(TODAY, time(0), EAT)
ANCHOR = MIDNIGHT + timedelta(hours=14, minutes=30)


def at(delta: timedelta) -> str:
    return eat_text(ANCHOR + delta)


def midnight(days: int, seconds: float = 0) -> str:
    """EAT midnight `days` from today, shifted by `seconds`."""
    return eat_text(MIDNIGHT + timedelta(days=days, seconds=seconds))


H = timedelta(hours=1)

TICKETS: dict[str, dict[str, str]] = {
    # open: SLA states at ANCHOR
    "O1": open_ticket(
        cluster="Quarry Road", owner="a.otieno", assigned_team="East 1", created_at_service=at(-10 * H)
    ),  # within, 10 h
    "O2": open_ticket(
        cluster="Quarry Road", owner="a.otieno", assigned_team="East 1", created_at_service=at(-40 * H)
    ),  # at risk
    "O3": open_ticket(
        cluster="Pipeline", owner="b.wanjiku", assigned_team="East 2", created_at_service="", first_seen_at=at(-50 * H)
    ),  # breached, first_seen clock
    "O4": open_ticket(owner="b.wanjiku", assigned_team="East 2"),  # no clock, no place
    "O5": open_ticket(
        cluster="QUARRY ROAD",
        owner="c.kamau",
        assigned_team="East 1",
        normalized_status="in_progress",
        created_at_service=at(-47 * H - timedelta(minutes=59)),
    ),  # at risk
    # closed: closed_at around today's EAT boundaries
    "C1": closed_ticket(
        cluster="Quarry Road",
        owner="a.otieno",
        assigned_team="East 1",
        created_at_service=at(-3.5 * H),
        closed_at=at(-2 * H),
        mttr="1.5",
        sla_status="Compliant",
    ),
    "C2": closed_ticket(
        cluster="Quarry Road",
        owner="a.otieno",
        assigned_team="East 1",
        created_at_service=midnight(0, -60 * 3600),
        closed_at=midnight(0),
        mttr="3",
        sla_status="Compliant",
    ),  # at 00:00:00 EAT: today
    "C3": closed_ticket(
        cluster="Pipeline",
        owner="b.wanjiku",
        assigned_team="East 2",
        created_at_service=midnight(-1, -3600),
        closed_at=midnight(0, -1),
        mttr="10",
        sla_status="Breached",
    ),  # 23:59:59 yesterday
    "C4": closed_ticket(
        cluster="Pipeline",
        owner="b.wanjiku",
        assigned_team="East 2",
        created_at_service=midnight(0, 2 * 3600 - 1),
        closed_at=midnight(0, 3 * 3600 - 1),
        mttr="0.5",
        sla_status="",
    ),  # 02:59:59 EAT = 23:59:59 UTC the day before
    "C5": closed_ticket(
        owner="c.kamau",
        assigned_team="East 1",
        created_at_service=midnight(0, 8 * 3600),
        closed_at=midnight(0, 10 * 3600),
        mttr="2",
        sla_status="compliant",
    ),  # no place
    "C6": closed_ticket(
        cluster="Pipeline",
        owner="a.otieno",
        assigned_team="East 1",
        created_at_service=midnight(-6, -3600),
        closed_at=midnight(-6),
        mttr="4",
        sla_status="Compliant",
    ),  # first instant of last_7_days
    "C7": closed_ticket(
        cluster="Pipeline",
        owner="a.otieno",
        assigned_team="East 1",
        created_at_service=midnight(-6, -7200),
        closed_at=midnight(-6, -1),
        mttr="5",
        sla_status="Breached",
    ),  # last instant before it
    "C8": closed_ticket(
        cluster="Quarry Road",
        owner="c.kamau",
        assigned_team="East 1",
        created_at_service=midnight(0, 3600),
        closed_at=midnight(1),
        mttr="1",
        sla_status="Compliant",
    ),  # 00:00 tomorrow: not today
}


@pytest.fixture(scope="module")
def dash_url(module_db_url: str) -> Iterator[str]:
    with psycopg.connect(module_db_url, autocommit=True) as conn:
        for name, lat, lon in [("Quarry Road", -1.284, 36.848), ("Pipeline", -1.317, 36.896)]:
            conn.execute(
                "INSERT INTO tickets.geo_clusters (cluster_key, cluster, latitude, longitude) "
                "VALUES (tickets.place_key(%s), %s, %s, %s)",
                (name, name, lat, lon),
            )
        for ticket_id, raw in TICKETS.items():
            insert(conn, ticket_id, raw)
    yield module_db_url


def dashboard(url: str, **args: Any) -> dict[str, Any]:
    args.setdefault("p_now", ANCHOR)
    named = ", ".join(f"{name} => %({name})s" for name in args)
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT reporting.fn_inc_dashboard({named})", args).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def ids(collection: dict[str, Any]) -> list[str]:
    return [feature["id"] for feature in collection["features"]]


# --- windows -----------------------------------------------------------------


def window_of(url: str, now: datetime, **args: Any) -> dict[str, Any]:
    return dashboard(url, p_now=now, **args)["window"]


@pytest.mark.parametrize(
    "now, name, first, last",
    [
        # EAT calendar days, not UTC: 00:00 EAT is 21:00 UTC the day before.
        (datetime(2026, 6, 15, 0, 0, tzinfo=EAT), "today", date(2026, 6, 15), date(2026, 6, 15)),
        (datetime(2026, 6, 14, 23, 59, 59, 999999, tzinfo=EAT), "today", date(2026, 6, 14), date(2026, 6, 14)),
        (datetime(2026, 6, 15, 0, 0, tzinfo=EAT), "yesterday", date(2026, 6, 14), date(2026, 6, 14)),
        (datetime(2027, 1, 1, 0, 30, tzinfo=EAT), "yesterday", date(2026, 12, 31), date(2026, 12, 31)),
        (datetime(2028, 3, 3, 12, 0, tzinfo=EAT), "last_7_days", date(2028, 2, 26), date(2028, 3, 3)),
        (datetime(2028, 3, 3, 12, 0, tzinfo=EAT), "last_30_days", date(2028, 2, 3), date(2028, 3, 3)),
        (datetime(2026, 7, 1, 0, 0, tzinfo=EAT), "this_month", date(2026, 7, 1), date(2026, 7, 1)),
        (datetime(2026, 6, 30, 23, 59, tzinfo=EAT), "this_month", date(2026, 6, 1), date(2026, 6, 30)),
        (datetime(2026, 6, 30, 21, 0, tzinfo=UTC), "this_month", date(2026, 7, 1), date(2026, 7, 1)),
    ],
)
def test_window_boundaries_are_eat_calendar_days(
    module_db_url: str, now: datetime, name: str, first: date, last: date
) -> None:
    got = window_of(module_db_url, now, p_window=name)
    assert got == {
        "name": name,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "from_ts": f"{first.isoformat()}T00:00:00+03:00",
        "to_ts": f"{(last + timedelta(days=1)).isoformat()}T00:00:00+03:00",
        "time_zone": "Africa/Nairobi",
    }


def test_midnight_utc_is_three_in_the_morning_eat(module_db_url: str) -> None:
    utc_midnight = datetime(2026, 6, 15, 0, 0, tzinfo=UTC)
    assert window_of(module_db_url, utc_midnight)["from"] == "2026-06-15"
    just_before_eat_midnight = datetime(2026, 6, 14, 20, 59, 59, tzinfo=UTC)
    assert window_of(module_db_url, just_before_eat_midnight)["from"] == "2026-06-14"


def test_custom_window_is_inclusive_and_case_of_the_name_is_ignored(module_db_url: str) -> None:
    got = window_of(module_db_url, ANCHOR, p_window=" Custom ", p_from=date(2026, 6, 1), p_to=date(2026, 6, 1))
    assert (got["name"], got["from_ts"], got["to_ts"]) == (
        "custom",
        "2026-06-01T00:00:00+03:00",
        "2026-06-02T00:00:00+03:00",
    )


def test_defaults_describe_today_now(module_db_url: str) -> None:
    with psycopg.connect(module_db_url) as conn:
        payload, today = conn.execute(
            "SELECT reporting.fn_inc_dashboard(), (now() AT TIME ZONE 'Africa/Nairobi')::date"
        ).fetchone()
    assert payload["window"]["name"] == "today"
    assert payload["window"]["from"] == today.isoformat()
    assert payload["filters"] == {"cluster": None, "status": None, "max_features": 10000}


def test_session_time_zone_does_not_change_the_payload(dash_url: str) -> None:
    with psycopg.connect(dash_url) as conn:
        conn.execute("SET TimeZone = 'America/Los_Angeles'")
        shifted = conn.execute("SELECT reporting.fn_inc_dashboard(p_now => %s)", (ANCHOR,)).fetchone()[0]
    assert shifted == dashboard(dash_url)


# --- which tickets each window and filter holds ---------------------------------


@pytest.mark.parametrize(
    "args, closed",
    [
        ({"p_window": "today"}, ["C1", "C5", "C4", "C2"]),
        ({"p_window": "yesterday"}, ["C3"]),
        ({"p_window": "last_7_days"}, ["C1", "C5", "C4", "C2", "C3", "C6"]),
        ({"p_window": "last_30_days"}, ["C1", "C5", "C4", "C2", "C3", "C6", "C7"]),
        ({"p_window": "custom", "p_from": TODAY + timedelta(days=1), "p_to": TODAY + timedelta(days=1)}, ["C8"]),
        ({"p_window": "custom", "p_from": TODAY - timedelta(days=6), "p_to": TODAY - timedelta(days=6)}, ["C6"]),
    ],
)
def test_closures_fall_in_the_right_window(dash_url: str, args: dict, closed: list[str]) -> None:
    payload = dashboard(dash_url, **args)
    mapped = [t for t in closed if t != "C5"]  # C5 has no place
    assert ids(payload["closed"]) == mapped
    assert payload["metrics"]["closed_in_window"] == len(closed)


def test_open_collection_is_live_not_windowed(dash_url: str) -> None:
    for window in ("today", "yesterday", "last_30_days"):
        payload = dashboard(dash_url, p_window=window)
        assert ids(payload["open"]) == ["O3", "O5", "O2", "O1"]  # most urgent first
        assert payload["metrics"]["open_total"] == 5


@pytest.mark.parametrize(
    "args, open_ids, closed_ids",
    [
        ({"p_cluster": "quarry road"}, ["O5", "O2", "O1"], ["C1", "C2"]),
        ({"p_cluster": " QUARRY ROAD "}, ["O5", "O2", "O1"], ["C1", "C2"]),
        ({"p_cluster": "Pipeline"}, ["O3"], ["C4"]),
        ({"p_status": "in_progress"}, ["O5"], []),
        ({"p_status": "CLOSED"}, [], ["C1", "C4", "C2"]),
        ({"p_cluster": "quarry road", "p_status": "open"}, ["O2", "O1"], []),
        ({"p_cluster": "pipeline", "p_status": "in_progress"}, [], []),
        ({"p_cluster": "Nowhere"}, [], []),
        ({"p_cluster": ""}, ["O3", "O5", "O2", "O1"], ["C1", "C4", "C2"]),
    ],
)
def test_filters_combine_with_and(dash_url: str, args: dict, open_ids: list, closed_ids: list) -> None:
    payload = dashboard(dash_url, **args)
    assert ids(payload["open"]) == open_ids
    assert ids(payload["closed"]) == closed_ids


# --- metrics ---------------------------------------------------------------------


def test_metrics_for_today(dash_url: str) -> None:
    metrics = dashboard(dash_url)["metrics"]
    assert metrics == {
        "open_total": 5,
        "open_by_sla_state": {"within": 1, "at_risk": 2, "breached": 1, "unknown": 1},
        "open_by_clock_source": {"created_at_service": 3, "first_seen_at": 1, "none": 1},
        "closed_in_window": 4,
        # clocks inside today: O1 04:30, C1 11:00, C4 01:59:59, C5 08:00, C8 01:00
        "created_in_window": 5,
        # C1 90, C2 180, C4 30, C5 120 minutes
        "mttr_minutes": {"median": 105, "p90": 162, "samples": 4},
        "sla_compliance": {"compliant": 3, "breached": 0, "unknown": 1, "rate": 1.0},
        # closed_at minus clock: C1 1.5 h, C2 60 h, C4 1 h, C5 2 h
        "contract_48h": {"within": 3, "breached": 1, "unknown": 0, "rate": 0.75},
        "by_cluster": [
            {"cluster": "Pipeline", "open": 1, "open_breached": 1, "closed_in_window": 1, "created_in_window": 1},
            {"cluster": "Quarry Road", "open": 3, "open_breached": 0, "closed_in_window": 2, "created_in_window": 3},
            {"cluster": None, "open": 1, "open_breached": 0, "closed_in_window": 1, "created_in_window": 1},
        ],
    }


def test_metrics_for_yesterday_and_a_cluster(dash_url: str) -> None:
    metrics = dashboard(dash_url, p_window="yesterday", p_cluster="pipeline")["metrics"]
    assert metrics["closed_in_window"] == 1
    assert metrics["mttr_minutes"] == {"median": 600, "p90": 600, "samples": 1}
    assert metrics["sla_compliance"] == {"compliant": 0, "breached": 1, "unknown": 0, "rate": 0.0}
    assert metrics["open_total"] == 1  # O3: open counts are live whatever the window


def test_empty_window_has_zero_counts_and_null_statistics(dash_url: str) -> None:
    payload = dashboard(dash_url, p_window="custom", p_from=date(2001, 1, 1), p_to=date(2001, 1, 31))
    metrics = payload["metrics"]
    assert metrics["closed_in_window"] == 0
    assert metrics["mttr_minutes"] == {"median": None, "p90": None, "samples": 0}
    assert metrics["sla_compliance"]["rate"] is None
    assert payload["closed"]["features"] == []


# --- GeoJSON -----------------------------------------------------------------------


def test_features_without_geometry_are_left_out_but_counted(dash_url: str) -> None:
    payload = dashboard(dash_url)
    assert {k: payload["open"][k] for k in ("tickets", "mapped", "unmapped", "over_limit")} == {
        "tickets": 5,
        "mapped": 4,
        "unmapped": 1,
        "over_limit": 0,
    }
    assert {k: payload["closed"][k] for k in ("tickets", "mapped", "unmapped", "over_limit")} == {
        "tickets": 4,
        "mapped": 3,
        "unmapped": 1,
        "over_limit": 0,
    }
    assert "O4" not in ids(payload["open"]) and "C5" not in ids(payload["closed"])


def test_open_feature_shape(dash_url: str) -> None:
    feature = dashboard(dash_url)["open"]["features"][0]
    assert feature == {
        "type": "Feature",
        "id": "O3",
        "geometry": {"type": "Point", "coordinates": [36.896, -1.317]},
        "properties": {
            "ticket_id": "O3",
            "status": "open",
            "cluster": "Pipeline",
            "region": None,
            "location_name": None,
            "assigned_team": "East 2",
            "owner": "b.wanjiku",
            "sla_state": "breached",
            "sla_clock_source": "first_seen_at",
            "hours_open": 50.0,
            "sla_due_at": eat_text(ANCHOR - 2 * H)[:19].replace(" ", "T") + "+03:00",
            "geo_source": "cluster",
        },
    }


def test_closed_feature_shape(dash_url: str) -> None:
    feature = dashboard(dash_url)["closed"]["features"][0]
    assert feature["id"] == "C1"
    assert feature["properties"] == {
        "ticket_id": "C1",
        "status": "closed",
        "cluster": "Quarry Road",
        "region": None,
        "location_name": None,
        "assigned_team": "East 1",
        "owner": "a.otieno",
        "closed_at": eat_text(ANCHOR - 2 * H)[:19].replace(" ", "T") + "+03:00",
        "mttr_minutes": 90,
        "sla_status": "Compliant",
        "geo_source": "cluster",
    }


def test_feature_cap_keeps_the_most_urgent_and_says_how_many_were_left_out(dash_url: str) -> None:
    payload = dashboard(dash_url, p_max_features=2)
    assert ids(payload["open"]) == ["O3", "O5"]
    assert (payload["open"]["mapped"], payload["open"]["over_limit"]) == (4, 2)
    assert ids(payload["closed"]) == ["C1", "C4"]  # latest closures first
    assert payload["closed"]["over_limit"] == 1
    assert payload["metrics"]["open_total"] == 5  # metrics never capped
    uncapped = dashboard(dash_url, p_max_features=None)
    assert uncapped["open"]["over_limit"] == 0 and len(uncapped["open"]["features"]) == 4


# --- freshness -----------------------------------------------------------------------


def test_freshness_from_import_meta(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO tickets.import_meta (dataset, metadata, updated_at) VALUES ('inc', %s, %s)",
            (
                Jsonb(
                    {
                        "source_max_key": "automations/inc/changes/2026-06-15T17-00-00.csv",
                        "source_max_ts": "2026-06-15T17:00:00+03:00",
                        "last_ingest_at": "2026-06-15T14:05:30.123456+00:00",
                    }
                ),
                datetime(2026, 6, 15, 17, 5, 31, tzinfo=EAT),
            ),
        )
    now = datetime(2026, 6, 15, 17, 20, tzinfo=EAT)
    assert dashboard(db_url, p_now=now)["freshness"] == {
        "last_ingest_at": "2026-06-15T17:05:30+03:00",
        "minutes_since_ingest": 14,
        "source_max_key": "automations/inc/changes/2026-06-15T17-00-00.csv",
        "source_max_ts": "2026-06-15T17:00:00+03:00",
        "updated_at": "2026-06-15T17:05:31+03:00",
    }


def test_freshness_tolerates_missing_keys_and_a_missing_row(db_url: str) -> None:
    nothing = {
        "last_ingest_at": None,
        "minutes_since_ingest": None,
        "source_max_key": None,
        "source_max_ts": None,
        "updated_at": None,
    }
    assert dashboard(db_url)["freshness"] == nothing
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO tickets.import_meta (dataset, metadata, updated_at) "
            "VALUES ('inc', '{\"source_max_ts\": \"#VALUE!\"}', %s)",
            (ANCHOR,),
        )
    got = dashboard(db_url)["freshness"]
    assert got == {**nothing, "updated_at": eat_text(ANCHOR)[:19].replace(" ", "T") + "+03:00"}


# --- argument errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message, hint",
    [
        (
            {"p_window": "last_week"},
            "unknown window 'last_week'",
            "Use one of: today, yesterday, last_7_days, last_30_days, this_month, custom (custom needs p_from and p_to).",
        ),
        ({"p_window": None}, "p_window must not be empty", None),
        ({"p_window": "custom"}, "window 'custom' needs both p_from and p_to", None),
        ({"p_window": "custom", "p_from": date(2026, 6, 1)}, "window 'custom' needs both p_from and p_to", None),
        (
            {"p_window": "custom", "p_from": date(2026, 6, 15), "p_to": date(2026, 6, 1)},
            "p_from (2026-06-15) is after p_to (2026-06-01)",
            "Both dates are inclusive; for a single day pass the same date twice.",
        ),
        (
            {"p_window": "today", "p_from": date(2026, 6, 1)},
            "p_from and p_to only apply to window 'custom' (got window 'today')",
            None,
        ),
        ({"p_status": "opne"}, "unknown status 'opne'", None),
        ({"p_max_features": 0}, "p_max_features must be at least 1 (got 0)", None),
        ({"p_now": None}, "p_now must not be null", None),
    ],
)
def test_invalid_arguments_raise_22023_with_message_and_hint(
    module_db_url: str, args: dict, message: str, hint: str | None
) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
        dashboard(module_db_url, **args)
    diag = caught.value.diag
    assert caught.value.sqlstate == "22023"
    assert diag.message_primary == message
    assert diag.message_hint
    if hint is not None:
        assert diag.message_hint == hint


# --- closures by engineer (migration 12) -----------------------------------------------


def engineer(
    name_key: str,
    name: str | None,
    closures: int,
    median: int | None,
    compliant: int,
    breached: int,
    rate: float | None,
    held: int,
    held_breached: int,
) -> dict[str, Any]:
    return {
        name_key: name,
        "closures": closures,
        "mttr_median_minutes": median,
        "sla_compliant": compliant,
        "sla_breached": breached,
        "sla_compliance_rate": rate,
        "open_held": held,
        "open_breached": held_breached,
    }


def test_engineers_today(dash_url: str) -> None:
    engineers = dashboard(dash_url)["engineers"]
    # today: C1 a.otieno 90, C2 a.otieno 180, C4 b.wanjiku 30 (no SLA status), C5 c.kamau 120
    assert engineers["by_owner"] == [
        engineer("owner", "a.otieno", 2, 135, 2, 0, 1.0, 2, 0),
        engineer("owner", "b.wanjiku", 1, 30, 0, 0, None, 2, 1),
        engineer("owner", "c.kamau", 1, 120, 1, 0, 1.0, 1, 0),
    ]
    assert engineers["by_team"] == [
        engineer("assigned_team", "East 1", 3, 120, 3, 0, 1.0, 3, 0),
        engineer("assigned_team", "East 2", 1, 30, 0, 0, None, 2, 1),
    ]


def test_engineers_last_7_days_and_filtered(dash_url: str) -> None:
    week = dashboard(dash_url, p_window="last_7_days")["engineers"]["by_owner"]
    assert week[:2] == [
        engineer("owner", "a.otieno", 3, 180, 3, 0, 1.0, 2, 0),  # + C6 240
        engineer("owner", "b.wanjiku", 2, 315, 0, 1, 0.0, 2, 1),  # + C3 600, Breached
    ]
    pipeline = dashboard(dash_url, p_window="last_7_days", p_cluster="PIPELINE")["engineers"]
    assert pipeline["by_owner"] == [
        engineer("owner", "b.wanjiku", 2, 315, 0, 1, 0.0, 1, 1),
        engineer("owner", "a.otieno", 1, 240, 1, 0, 1.0, 0, 0),
    ]


def test_engineer_without_a_name_is_null(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        insert(conn, "X1", open_ticket(owner="", assigned_team="N/A"))
    engineers = dashboard(db_url)["engineers"]
    assert engineers["by_owner"] == [engineer("owner", None, 0, None, 0, 0, None, 1, 0)]
    assert engineers["by_team"] == [engineer("assigned_team", None, 0, None, 0, 0, None, 1, 0)]
