"""Geocoding runs end to end: a fake provider on 127.0.0.1 in each real reply format, real PostGIS."""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg
import pytest

from fleettickets.db import lock_key
from fleettickets.errors import EXIT_LOCKED, GeocoderAuthError, GeocoderUnavailable
from fleettickets.geocoding.providers import make_geocoder
from fleettickets.geocoding.runs import geocode_clusters, geocode_locations
from tests.geo_tools import (
    JUNCTION_QUERY,
    KAYOLE,
    KAYOLE_JUNCTION,
    KEYS,
    KISUMU,
    add_ticket,
    answer_clusters,
    geo_env,
    hit,
    placed,
    quota_spent,
    rows,
    seed_tickets,
    settings_for,
)
from tests.geocode_server import FakeGeocodeServer, Reply, invalid_key_reply, malformed, slow
from tests.stream_tools import run_cli
from tests.test_geocoder import FakeClock

GIKOMBA_QUERY = "Gikomba Market, Quarry Road, Nairobi East, Kenya"
PIPELINE_QUERY = "Pipeline Stage, Pipeline, Nairobi East, Kenya"


@pytest.fixture
def seeded(db_url: str) -> str:
    seed_tickets(db_url)
    return db_url


@pytest.fixture
def clustered(seeded: str, server: FakeGeocodeServer) -> str:
    """Tickets with every cluster geocoded; the server's log starts empty."""
    answer_clusters(server)
    geocode_clusters(settings_for(seeded, server), apply=True)
    server.requests.clear()
    return seeded


def test_dry_run_sends_nothing_and_writes_nothing(seeded: str, server: FakeGeocodeServer, tmp_path: Path) -> None:
    result = run_cli(["geocode-clusters"], geo_env(seeded, server), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "would geocode 3 clusters: 3 queries to send" in result.stdout
    assert "  Quarry Road, Nairobi East, Kenya" in result.stdout  # QOA, through its alias
    assert "(dry run: nothing sent to the provider, nothing written; add --apply)" in result.stdout
    answer_clusters(server)
    geocode_clusters(settings_for(seeded, server), apply=True)
    server.requests.clear()
    result = run_cli(["geocode-locations"], geo_env(seeded, server), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "would geocode 4 locations: 3 queries to send" in result.stdout
    for query in (GIKOMBA_QUERY, JUNCTION_QUERY, PIPELINE_QUERY):
        assert f"  {query}\n" in result.stdout
    assert "skipped 1 location names with no place name left" in result.stdout
    assert server.requests == []
    assert rows(seeded, "geo_locations", "status") == {}


def test_clusters_place_tickets_through_aliases(seeded: str, server: FakeGeocodeServer, provider: str) -> None:
    answer_clusters(server)
    report = geocode_clusters(settings_for(seeded, server), apply=True)
    assert report.statuses == {"ok": 3} and report.requests_sent == 3
    assert sorted(server.queries()) == sorted(
        ["Kayole, Nairobi East, Kenya", "Quarry Road, Nairobi East, Kenya", "Pipeline, Nairobi East, Kenya"]
    )
    assert all(
        r.params.get("countrycode" if provider == "opencage" else "countrycodes") == "ke" for r in server.requests
    )
    saved = rows(seeded, "geo_clusters", "status, provider, query, fetched_at IS NOT NULL, verified")
    assert saved["quarry road"] == ("ok", provider, "Quarry Road, Nairobi East, Kenya", True, False)
    where = placed(seeded)
    assert where["WOT3"] == ("cluster", -1.2745, 36.842)  # cluster QOA
    assert where["WOT6"][0] == "cluster"  # cluster PTMP
    assert where["WOT1"] == ("cluster", *KAYOLE)


def test_locations_one_request_per_place_bounded_to_the_cluster(
    clustered: str, server: FakeGeocodeServer, provider: str
) -> None:
    server.answer(JUNCTION_QUERY, hit(provider, KAYOLE_JUNCTION, "Kayole Junction"))
    report = geocode_locations(settings_for(clustered, server), apply=True)
    # Two coded names of Kayole Junction share one request; Gikomba and the
    # Pipeline stage get the provider's "no result".
    assert server.queries().count(JUNCTION_QUERY) == 1
    assert report.requests_sent == 3 and report.places == 4
    assert report.statuses == {"ok": 2, "not_found": 2}
    params = next(r.params for r in server.requests if r.params["q"] == JUNCTION_QUERY)
    box = [float(v) for v in params["bounds" if provider == "opencage" else "viewbox"].split(",")]
    assert box[0] < KAYOLE[1] < box[2] and box[1] < KAYOLE[0] < box[3]
    assert box[2] - box[0] == pytest.approx(0.449, abs=0.01)  # about 25 km each side
    where = placed(clustered)
    assert where["WOT1"] == ("location", -1.2761, 36.9139)
    assert where["WOT2"] == ("location", -1.2761, 36.9139)
    assert where["WOT3"][0] == "cluster"  # not found: still on its cluster's point
    assert where["WOT5"][0] == "cluster"  # closed tickets are not looked up
    saved = rows(clustered, "geo_locations", "status, cluster_key, round(distance_km::numeric)::float")
    assert saved["nw_kayole_junction_fdt3"] == ("ok", "kayole", 0.0)
    assert saved["adr_mnt_gikomba_mkt"] == ("not_found", "quarry road", None)


def test_a_second_run_sends_zero_requests(
    clustered: str, server: FakeGeocodeServer, provider: str, tmp_path: Path
) -> None:
    server.answer(JUNCTION_QUERY, hit(provider, KAYOLE_JUNCTION))
    geocode_locations(settings_for(clustered, server), apply=True)
    before = len(server.requests)
    for command in ("geocode-clusters", "geocode-locations"):
        result = run_cli([command, "--apply"], geo_env(clustered, server), tmp_path)
        assert result.returncode == 0, result.stderr
        assert "need geocoding" in result.stdout
    assert len(server.requests) == before
    # A new coded name for a place already answered reuses that answer.
    with psycopg.connect(clustered, autocommit=True) as conn:
        add_ticket(conn, "WOT7", "Kayole", "NW_KAYOLE_JUNCTION_FDT9")
    report = geocode_locations(settings_for(clustered, server), apply=True)
    assert report.from_cache == 1 and report.requests_sent == 0
    assert placed(clustered)["WOT7"] == ("location", -1.2761, 36.9139)


@pytest.mark.parametrize(
    "point, status, source",
    [
        ((KAYOLE[0] + 0.20, KAYOLE[1]), "ok", "location"),  # 22 km north
        ((KAYOLE[0] + 0.25, KAYOLE[1]), "rejected", "cluster"),  # 28 km north
        (KISUMU, "rejected", "cluster"),  # the wrong city
    ],
)
def test_25_km_guard(
    clustered: str, server: FakeGeocodeServer, provider: str, point: tuple[float, float], status: str, source: str
) -> None:
    server.answer(JUNCTION_QUERY, hit(provider, point))
    report = geocode_locations(settings_for(clustered, server), apply=True)
    assert report.statuses[status] == 2
    assert placed(clustered)["WOT1"][0] == source
    saved = rows(clustered, "geo_locations", "status, latitude, distance_km")
    assert saved["nw_kayole_junction_fdt3"][:2] == (status, pytest.approx(point[0]))
    assert (saved["nw_kayole_junction_fdt3"][2] > 25) == (status == "rejected")


def test_failed_answers_are_retried_only_when_asked_or_old(clustered: str, server: FakeGeocodeServer) -> None:
    settings = settings_for(clustered, server)
    geocode_locations(settings, apply=True)  # every place: "no result"
    assert {s for (s,) in rows(clustered, "geo_locations", "status").values()} == {"not_found"}
    asked = len(server.requests)
    assert geocode_locations(settings, apply=True).places == 0
    assert len(server.requests) == asked
    server.answer(JUNCTION_QUERY, hit(server.provider, KAYOLE_JUNCTION))
    report = geocode_locations(settings, apply=True, retry_failed=True)
    assert len(server.requests) == asked + 3 and report.statuses["ok"] == 2
    with psycopg.connect(clustered, autocommit=True) as conn:
        conn.execute(
            "UPDATE tickets.geo_locations SET fetched_at = now() - interval '31 days' WHERE status = 'not_found'"
        )
    assert geocode_locations(settings, apply=True).requests_sent == 2  # default age: 30 days


def test_verified_rows_are_never_asked_or_overwritten(clustered: str, server: FakeGeocodeServer) -> None:
    with psycopg.connect(clustered, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO tickets.geo_locations (location_key, location_name, latitude, longitude, "
            "status, verified, provider) VALUES ('nw_kayole_junction_fdt3', 'NW_KAYOLE_JUNCTION_FDT3', "
            "-1.2799, 36.9111, 'ok', true, 'manual'), ('adr_mnt_gikomba_mkt', 'ADR_MNT_GIKOMBA_MKT', "
            "NULL, NULL, 'not_found', true, 'manual')"
        )
        conn.execute("SELECT tickets.refresh_geometry()")
    server.answer(JUNCTION_QUERY, hit(server.provider, KAYOLE_JUNCTION))
    geocode_locations(settings_for(clustered, server), apply=True, retry_failed=True)
    assert GIKOMBA_QUERY not in server.queries()
    saved = rows(clustered, "geo_locations", "status, latitude, longitude, verified, provider")
    assert saved["nw_kayole_junction_fdt3"] == ("ok", -1.2799, 36.9111, True, "manual")
    assert saved["adr_mnt_gikomba_mkt"] == ("not_found", None, None, True, "manual")
    # The other coded name was asked, and got the provider's point.
    assert saved["mnt_kayole_junction_2"][:2] == ("ok", pytest.approx(KAYOLE_JUNCTION[0]))
    assert placed(clustered)["WOT1"] == ("location", -1.2799, 36.9111)


def test_quota_stop_keeps_finished_work_and_exits_0(
    clustered: str, server: FakeGeocodeServer, provider: str, tmp_path: Path
) -> None:
    # Queries go most-open-tickets first, then by key: Gikomba, Kayole Junction, Pipeline.
    server.answer(GIKOMBA_QUERY, hit(provider, (-1.2830, 36.8370), "Gikomba"))
    server.answer(JUNCTION_QUERY, quota_spent(provider))
    result = run_cli(["geocode-locations", "--apply"], geo_env(clustered, server), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "stopped early: " in result.stdout and "quota is spent" in result.stdout
    assert "2 queries left for a later run" in result.stdout
    assert server.queries() == [GIKOMBA_QUERY, JUNCTION_QUERY]  # nothing after the stop
    assert rows(clustered, "geo_locations", "status") == {"adr_mnt_gikomba_mkt": ("ok",)}
    assert placed(clustered)["WOT3"][0] == "location"


def test_refused_key_stops_at_once_keeping_finished_work(
    clustered: str, server: FakeGeocodeServer, provider: str, tmp_path: Path
) -> None:
    server.answer(GIKOMBA_QUERY, hit(provider, (-1.2830, 36.8370), "Gikomba"))
    server.answer(JUNCTION_QUERY, invalid_key_reply(provider))
    result = run_cli(["-vv", "geocode-locations", "--apply"], geo_env(clustered, server), tmp_path)
    assert result.returncode == 1
    label = {"locationiq": "LocationIQ", "opencage": "OpenCage"}[provider]
    assert result.stderr.strip().splitlines()[-1].startswith(f"Error: {label} refused the API key (HTTP 401")
    assert "1 locations saved before the stop are kept; 2 queries are left" in result.stderr
    assert KEYS[provider] not in result.stdout + result.stderr
    assert server.queries() == [GIKOMBA_QUERY, JUNCTION_QUERY]
    assert rows(clustered, "geo_locations", "status") == {"adr_mnt_gikomba_mkt": ("ok",)}


def test_wrong_key_is_refused_without_leaking(clustered: str, server: FakeGeocodeServer, tmp_path: Path) -> None:
    env = geo_env(clustered, server, GEOCODER_API_KEY="pk.wrong-key-0000")
    result = run_cli(["-vv", "geocode-locations", "--apply"], env, tmp_path)
    assert result.returncode == 1 and "refused the API key" in result.stderr
    assert "pk.wrong-key-0000" not in result.stdout + result.stderr
    assert len(server.requests) == 1  # stopped at once


def connect_with(server: FakeGeocodeServer, clock: FakeClock, **options: object):  # type: ignore[no-untyped-def]
    return make_geocoder(
        server.provider, KEYS[server.provider], base_url=server.url, clock=clock, sleep=clock.sleep, **options
    )


def test_429_5xx_malformed_and_timeouts_are_retried(
    clustered: str, server: FakeGeocodeServer, provider: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "fleettickets"):  # the CLI's set-up quiets httpx in-process
        caplog.set_level(logging.DEBUG, logger=name)
    clock = FakeClock()
    limited = Reply(
        429,
        {"error": "Rate Limited Second"}
        if provider == "locationiq"
        else {"status": {"code": 429, "message": "too many requests"}, "results": []},
        {"Retry-After": "7"},
    )
    server.enqueue(
        limited,
        Reply(503, {"error": "busy"}),
        malformed(),
        slow(hit(provider, KAYOLE), 1.0),
        hit(provider, (-1.2830, 36.8370), "Gikomba"),
    )
    geocoder = connect_with(server, clock, max_attempts=5, timeout=0.3)
    report = geocode_locations(settings_for(clustered, server), apply=True, limit=1, geocoder=geocoder)
    assert report.statuses == {"ok": 1} and report.requests_sent == 5 and report.left == 2
    assert clock.sleeps[0] == 7.0  # Retry-After honoured
    assert "retry 4 of 4" in caplog.text and "HTTP Request: GET" in caplog.text
    assert KEYS[provider] not in caplog.text
    assert "geocoding locations: 1 of 1 queries asked" in caplog.text  # no terminal: log lines
    assert rows(clustered, "geo_locations", "status") == {"adr_mnt_gikomba_mkt": ("ok",)}


def test_provider_down_is_an_error_never_not_found(clustered: str, server: FakeGeocodeServer, provider: str) -> None:
    clock = FakeClock()
    server.enqueue(hit(provider, (-1.2830, 36.8370)), *[Reply(503, {"error": "down"})] * 3)
    geocoder = connect_with(server, clock, max_attempts=3)
    with pytest.raises(GeocoderUnavailable, match="1 locations saved before the stop are kept"):
        geocode_locations(settings_for(clustered, server), apply=True, geocoder=geocoder)
    saved = rows(clustered, "geo_locations", "status, last_error, latitude")
    assert saved["adr_mnt_gikomba_mkt"][0] == "ok"
    status, last_error, latitude = saved["mnt_kayole_junction_2"]
    assert (status, latitude) == ("error", None)
    assert "failed 3 times" in last_error and KEYS[provider] not in last_error
    assert placed(clustered)["WOT2"][0] == "cluster"
    # An error is not an answer: the next run asks again.
    server.answer(JUNCTION_QUERY, hit(provider, KAYOLE_JUNCTION))
    report = geocode_locations(settings_for(clustered, server), apply=True)
    assert JUNCTION_QUERY in server.queries()[-2:] and report.statuses["ok"] == 2
    assert placed(clustered)["WOT2"][0] == "location"


def test_rate_limit_from_settings(seeded: str, server: FakeGeocodeServer) -> None:
    answer_clusters(server)
    geocode_clusters(settings_for(seeded, server, geocoder_requests_per_second=8.0), apply=True)
    arrivals = [r.at for r in server.requests]
    assert len(arrivals) == 3
    assert arrivals[-1] - arrivals[0] >= 2 / 8.0 - 0.01


def test_small_batches_commit_as_they_go(clustered: str, server: FakeGeocodeServer) -> None:
    seen: list[int] = []
    original = server._reply_for

    def spy(path: str, params: dict[str, str]) -> Reply:
        with psycopg.connect(clustered) as conn:
            seen.append(conn.execute("SELECT count(*) FROM tickets.geo_locations").fetchone()[0])
        return original(path, params)

    server._reply_for = spy  # type: ignore[method-assign]
    geocode_locations(settings_for(clustered, server), apply=True, batch_size=1)
    assert seen == [0, 1, 3]  # the Kayole Junction answer stored two coded names


def test_a_second_run_waits_for_the_lock(clustered: str, server: FakeGeocodeServer, tmp_path: Path) -> None:
    with psycopg.connect(clustered, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (lock_key("geocode"),))
        result = run_cli(["geocode-locations", "--apply"], geo_env(clustered, server), tmp_path)
    assert result.returncode == EXIT_LOCKED
    assert "another fleettickets geocode run holds the lock" in result.stderr
    assert server.requests == []


def test_apply_without_a_provider_is_a_usage_error(seeded: str, tmp_path: Path) -> None:
    result = run_cli(["geocode-clusters", "--apply"], {"PATH": "/usr/bin:/bin", "DATABASE_URL": seeded}, tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "Error: GEOCODER_PROVIDER is not set (set it in the environment or in .env; see .env.example)"
    )


def test_auth_error_class_is_kept(clustered: str, server: FakeGeocodeServer, provider: str) -> None:
    server.enqueue(invalid_key_reply(provider))
    with pytest.raises(GeocoderAuthError):
        geocode_locations(settings_for(clustered, server), apply=True)
