"""Tests for fleettickets.geocoding.providers against a fake provider on 127.0.0.1."""

from __future__ import annotations

import email.utils
import logging
import socket
import time
import traceback
from collections.abc import Iterator
from typing import Any

import pytest

from fleettickets import __version__
from fleettickets.errors import (
    ConfigError,
    GeocoderAuthError,
    GeocoderError,
    GeocoderQuotaExhausted,
    GeocoderUnavailable,
)
from fleettickets.geocoding.providers import (
    GeocodeAnswer,
    Geocoder,
    RateLimiter,
    make_geocoder,
    parse_retry_after,
)
from fleettickets.logs import redact
from tests.geocode_server import (
    KEYS,
    FakeGeocodeServer,
    Reply,
    locationiq_error,
    malformed,
    opencage_error,
    sample_reply,
    slow,
)

QUERY = "Kayole Junction, Kayole, Nairobi East, Kenya"
NAIROBI = (36.65, -1.45, 37.1, -1.15)
HITS = {
    "locationiq": "locationiq_search_kayole_junction",
    "opencage": "opencage_geocode_kayole_junction",
    "nominatim": "nominatim_search_ruaka_stage",
}
RATE_LIMITED = {"locationiq": "Rate Limited Second", "opencage": "too many requests"}
QUOTA_SPENT = {
    "locationiq": lambda: sample_reply("locationiq_error_rate_limited_day", 429),
    "opencage": lambda: sample_reply("opencage_error_402", 402),
}


class FakeClock:
    """A monotonic clock that only moves when slept on, recording each sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def error(provider: str, status: int, message: str, **headers: str) -> Reply:
    headers = {k.replace("_", "-"): v for k, v in headers.items()}
    if provider == "opencage":
        return opencage_error(status, message, headers)
    return locationiq_error(status, message, headers)


def hit(provider: str) -> Reply:
    return sample_reply(HITS[provider])


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def geocoder(server: FakeGeocodeServer, clock: FakeClock) -> Iterator[Geocoder]:
    with connect(server, clock) as client:
        yield client


def connect(server: FakeGeocodeServer, clock: FakeClock, **options: Any) -> Geocoder:
    options.setdefault("max_attempts", 3)
    options.setdefault("timeout", 2.0)
    return make_geocoder(
        server.provider,
        KEYS.get(server.provider),
        base_url=server.url,
        clock=clock,
        sleep=clock.sleep,
        **options,
    )


# Answers


def test_a_hit_becomes_an_ok_answer(hit_server: FakeGeocodeServer, geocoder: Geocoder, provider: str) -> None:
    answer = geocoder.lookup(QUERY)
    expected = {
        "locationiq": (
            0.31001,
            "Kayole Junction, Kangundo Road, Kayole, Embakasi, Nairobi, Nairobi County, 00518, Kenya",
        ),
        "opencage": (9.0, "Kayole Junction, Kangundo Road, Nairobi, Kenya"),
    }[provider]
    assert answer == GeocodeAnswer("ok", -1.2761094, 36.9139211, expected[0], expected[1], provider, QUERY)
    assert isinstance(answer.latitude, float) and isinstance(answer.longitude, float)


@pytest.fixture
def hit_server(server: FakeGeocodeServer, provider: str) -> FakeGeocodeServer:
    server.answer(QUERY, hit(provider))
    return server


def test_request_carries_country_limit_key_and_user_agent(
    hit_server: FakeGeocodeServer, geocoder: Geocoder, provider: str
) -> None:
    geocoder.lookup(QUERY)
    (seen,) = hit_server.requests
    expected = {
        "locationiq": {
            "key": KEYS[provider],
            "q": QUERY,
            "format": "json",
            "countrycodes": "ke",
            "limit": "1",
        },
        "opencage": {
            "key": KEYS[provider],
            "q": QUERY,
            "countrycode": "ke",
            "limit": "1",
            "no_annotations": "1",
        },
    }[provider]
    assert seen.params == expected
    assert seen.path == {"locationiq": "/v1/search", "opencage": "/geocode/v1/json"}[provider]
    assert seen.headers["user-agent"].startswith(f"fleettickets/{__version__}")


def test_bias_box_bounds_the_search(hit_server: FakeGeocodeServer, geocoder: Geocoder, provider: str) -> None:
    assert geocoder.lookup(QUERY, bias_box=NAIROBI).status == "ok"
    params = hit_server.requests[0].params
    if provider == "locationiq":
        assert params["viewbox"] == "36.65,-1.45,37.1,-1.15"
        assert params["bounded"] == "1"
    else:
        assert params["bounds"] == "36.65,-1.45,37.1,-1.15"


def test_no_result_is_a_cacheable_not_found(
    server: FakeGeocodeServer, geocoder: Geocoder, provider: str, clock: FakeClock
) -> None:
    # The server's default is the provider's own "no result" reply:
    # LocationIQ 404 {"error": "Unable to geocode"}, OpenCage 200 with results [].
    answer = geocoder.lookup("Nowhere Junction, Kenya")
    assert answer == GeocodeAnswer("not_found", None, None, None, None, provider, "Nowhere Junction, Kenya")
    assert geocoder.requests_sent == 1 and len(server.requests) == 1
    assert clock.sleeps == []


def test_locationiq_empty_array_is_not_found(clock: FakeClock) -> None:
    with FakeGeocodeServer("locationiq", key=KEYS["locationiq"]) as server:
        server.enqueue(sample_reply("nominatim_search_empty"))
        with connect(server, clock) as geocoder:
            assert geocoder.lookup(QUERY).status == "not_found"


def test_query_whitespace_is_normalised_and_blank_is_refused(hit_server: FakeGeocodeServer, geocoder: Geocoder) -> None:
    assert geocoder.lookup(f"  {QUERY.replace(' ', '   ')} ").query == QUERY
    with pytest.raises(ValueError):
        geocoder.lookup("   ")
    assert geocoder.requests_sent == 1


def test_requests_sent_counts_every_attempt(server: FakeGeocodeServer, geocoder: Geocoder, provider: str) -> None:
    server.enqueue(error(provider, 503, "service unavailable"), hit(provider))
    geocoder.lookup(QUERY)
    geocoder.lookup("Elsewhere, Kenya")
    assert geocoder.requests_sent == 3 == len(server.requests)


# Nominatim (self-hosted): LocationIQ's format at /search, no key


def test_nominatim_needs_no_key(clock: FakeClock) -> None:
    with FakeGeocodeServer("nominatim") as server:
        server.answer("Ruaka Stage, Kenya", hit("nominatim"))
        with make_geocoder("nominatim", None, base_url=server.url, clock=clock, sleep=clock.sleep) as geocoder:
            answer = geocoder.lookup("Ruaka Stage, Kenya")
            missing = geocoder.lookup("Nowhere, Kenya")
    assert (answer.status, answer.latitude, answer.longitude) == (
        "ok",
        -1.2046371,
        36.7778805,
    )
    assert answer.provider == "nominatim"
    assert missing.status == "not_found"
    assert [r.path for r in server.requests] == ["/search", "/search"]
    assert "key" not in server.requests[0].params
    assert server.requests[0].params["countrycodes"] == "ke"


# Failures are exceptions, never answers


@pytest.mark.parametrize(
    ("provider", "name", "status"),
    [
        ("locationiq", "locationiq_error_invalid_key", 401),
        ("locationiq", "locationiq_error_key_not_active", 401),
        ("locationiq", "locationiq_error_access_restricted", 403),
        ("opencage", "opencage_error_401", 401),
        ("opencage", "opencage_error_403", 403),
    ],
)
def test_refused_key_stops_at_once(
    server: FakeGeocodeServer,
    geocoder: Geocoder,
    clock: FakeClock,
    name: str,
    status: int,
) -> None:
    server.enqueue(sample_reply(name, status))
    with pytest.raises(GeocoderAuthError, match=f"HTTP {status}"):
        geocoder.lookup(QUERY)
    assert geocoder.requests_sent == 1 and clock.sleeps == []


@pytest.mark.parametrize("refusal", ["auth", "quota"])
def test_after_a_refusal_no_more_requests_are_sent(
    server: FakeGeocodeServer, geocoder: Geocoder, provider: str, refusal: str
) -> None:
    expected = {"auth": GeocoderAuthError, "quota": GeocoderQuotaExhausted}[refusal]
    if refusal == "auth":
        server.enqueue(error(provider, 401, "Invalid key"))
    else:
        server.enqueue(QUOTA_SPENT[provider]())
    with pytest.raises(expected) as first:
        geocoder.lookup(QUERY)
    with pytest.raises(expected) as second:
        geocoder.lookup("Ruaka Stage, Kenya")
    assert str(second.value) == str(first.value)
    assert geocoder.requests_sent == 1 == len(server.requests)


def test_wrong_key_is_refused_by_the_server(server: FakeGeocodeServer, provider: str, clock: FakeClock) -> None:
    with (
        make_geocoder(provider, "not-the-key", base_url=server.url, clock=clock, sleep=clock.sleep) as geocoder,
        pytest.raises(GeocoderAuthError),
    ):
        geocoder.lookup(QUERY)


def test_spent_daily_quota_stops_at_once(
    server: FakeGeocodeServer, geocoder: Geocoder, provider: str, clock: FakeClock
) -> None:
    server.enqueue(QUOTA_SPENT[provider]())
    with pytest.raises(GeocoderQuotaExhausted, match="00:00 UTC"):
        geocoder.lookup(QUERY)
    assert geocoder.requests_sent == 1 and clock.sleeps == []


def test_locationiq_rate_limited_day_ignores_retry_after(clock: FakeClock) -> None:
    with FakeGeocodeServer("locationiq", key=KEYS["locationiq"]) as server:
        server.enqueue(locationiq_error(429, "Rate Limited Day", {"Retry-After": "5"}))
        with connect(server, clock) as geocoder, pytest.raises(GeocoderQuotaExhausted):
            geocoder.lookup(QUERY)
    assert clock.sleeps == []


def test_opencage_status_code_in_a_200_body_is_honoured(clock: FakeClock) -> None:
    body = sample_reply("opencage_error_402").body
    with FakeGeocodeServer("opencage", key=KEYS["opencage"]) as server:
        server.enqueue(Reply(200, body))
        with connect(server, clock) as geocoder, pytest.raises(GeocoderQuotaExhausted):
            geocoder.lookup(QUERY)


def test_rate_limit_honours_retry_after_seconds(
    server: FakeGeocodeServer, geocoder: Geocoder, provider: str, clock: FakeClock
) -> None:
    server.enqueue(error(provider, 429, RATE_LIMITED[provider], Retry_After="7"))
    server.enqueue(hit(provider))
    assert geocoder.lookup(QUERY).status == "ok"
    assert clock.sleeps == [7.0]
    assert geocoder.requests_sent == 2


def test_rate_limit_honours_retry_after_http_date(
    server: FakeGeocodeServer, geocoder: Geocoder, provider: str, clock: FakeClock
) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    server.enqueue(error(provider, 429, RATE_LIMITED[provider], Retry_After=when))
    server.enqueue(hit(provider))
    assert geocoder.lookup(QUERY).status == "ok"
    (waited,) = clock.sleeps
    assert 27 <= waited <= 30


def test_rate_limit_without_retry_after_backs_off_exponentially(
    server: FakeGeocodeServer, geocoder: Geocoder, provider: str, clock: FakeClock
) -> None:
    limited = error(provider, 429, RATE_LIMITED[provider])
    server.enqueue(limited, limited, hit(provider))
    assert geocoder.lookup(QUERY).status == "ok"
    assert clock.sleeps == [1.0, 2.0]


def test_locationiq_minute_limit_waits_a_minute(clock: FakeClock) -> None:
    with FakeGeocodeServer("locationiq", key=KEYS["locationiq"]) as server:
        server.enqueue(sample_reply("locationiq_error_rate_limited_minute", 429), hit("locationiq"))
        with connect(server, clock) as geocoder:
            assert geocoder.lookup(QUERY).status == "ok"
    assert clock.sleeps == [60.0]


def test_rate_limit_that_persists_is_unavailable_after_bounded_tries(
    server: FakeGeocodeServer, geocoder: Geocoder, provider: str, clock: FakeClock
) -> None:
    limited = error(provider, 429, RATE_LIMITED[provider], Retry_After="2")
    server.enqueue(*[limited] * 5)
    with pytest.raises(GeocoderUnavailable, match="failed 3 times"):
        geocoder.lookup(QUERY)
    assert clock.sleeps == [2.0, 2.0]
    assert geocoder.requests_sent == 3 == len(server.requests)


def test_retry_after_beyond_the_cap_gives_up_without_waiting(
    server: FakeGeocodeServer, provider: str, clock: FakeClock
) -> None:
    server.enqueue(error(provider, 429, RATE_LIMITED[provider], Retry_After="3600"))
    with connect(server, clock, max_retry_after=120) as geocoder:
        with pytest.raises(GeocoderUnavailable, match="wait 3600 s"):
            geocoder.lookup(QUERY)
        assert geocoder.requests_sent == 1
    assert clock.sleeps == []


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_server_errors_are_retried_then_unavailable(
    server: FakeGeocodeServer,
    geocoder: Geocoder,
    provider: str,
    clock: FakeClock,
    status: int,
) -> None:
    server.enqueue(*[error(provider, status, "Internal Server Error")] * 3)
    with pytest.raises(GeocoderUnavailable, match=f"HTTP {status}"):
        geocoder.lookup(QUERY)
    assert geocoder.requests_sent == 3
    assert clock.sleeps == [1.0, 2.0]


def test_server_error_then_success(
    server: FakeGeocodeServer, geocoder: Geocoder, provider: str, clock: FakeClock
) -> None:
    server.enqueue(error(provider, 502, "Bad Gateway"), hit(provider))
    assert geocoder.lookup(QUERY).status == "ok"
    assert clock.sleeps == [1.0]


def test_backoff_is_capped(server: FakeGeocodeServer, provider: str, clock: FakeClock) -> None:
    server.enqueue(*[error(provider, 500, "Internal Server Error")] * 6)
    with (
        connect(server, clock, max_attempts=6, backoff=2.0, max_backoff=10.0) as g,
        pytest.raises(GeocoderUnavailable),
    ):
        g.lookup(QUERY)
    assert clock.sleeps == [2.0, 4.0, 8.0, 10.0, 10.0]


def test_malformed_json_is_retried(
    server: FakeGeocodeServer, geocoder: Geocoder, provider: str, clock: FakeClock
) -> None:
    server.enqueue(malformed(), hit(provider))
    assert geocoder.lookup(QUERY).status == "ok"
    server.enqueue(*[malformed()] * 3)
    with pytest.raises(GeocoderUnavailable, match="malformed JSON"):
        geocoder.lookup(QUERY)
    assert geocoder.requests_sent == 5


WRONG_SHAPES = {
    "locationiq": [
        Reply(200, {"error": "Unexpected"}),
        Reply(200, [{"lat": "north", "lon": "36.9"}]),
        Reply(200, [{"lat": "-91.0", "lon": "36.9"}]),
        Reply(200, [{"display_name": "no coordinates"}]),
    ],
    "opencage": [
        Reply(200, {"status": {"code": 200, "message": "OK"}}),
        Reply(200, {"results": [{"geometry": {"lat": None, "lng": 36.9}}]}),
        Reply(200, {"results": [{"geometry": {"lat": True, "lng": 36.9}}]}),
        Reply(200, {"results": ["not an object"]}),
    ],
}


@pytest.mark.parametrize("case", range(4))
def test_unreadable_replies_are_failures_not_answers(
    server: FakeGeocodeServer, geocoder: Geocoder, provider: str, case: int
) -> None:
    server.enqueue(*[WRONG_SHAPES[provider][case]] * 3)
    with pytest.raises(GeocoderUnavailable):
        geocoder.lookup(QUERY)
    assert geocoder.requests_sent == 3


def test_timeouts_are_retried_then_unavailable(server: FakeGeocodeServer, provider: str, clock: FakeClock) -> None:
    server.enqueue(slow(hit(provider), 2.0), slow(hit(provider), 2.0))
    with connect(server, clock, timeout=0.2, max_attempts=2) as geocoder:
        with pytest.raises(GeocoderUnavailable, match="timed out"):
            geocoder.lookup(QUERY)
        assert geocoder.requests_sent == 2
    assert clock.sleeps == [1.0]


def test_timeout_then_success(server: FakeGeocodeServer, provider: str, clock: FakeClock) -> None:
    server.enqueue(slow(hit(provider), 2.0), hit(provider))
    with connect(server, clock, timeout=0.2) as geocoder:
        assert geocoder.lookup(QUERY).status == "ok"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("provider", ["locationiq", "opencage"])
def test_connection_refused_is_retried_then_unavailable(provider: str, clock: FakeClock) -> None:
    with make_geocoder(
        provider,
        KEYS[provider],
        base_url=f"http://127.0.0.1:{free_port()}",
        clock=clock,
        sleep=clock.sleep,
        max_attempts=3,
    ) as geocoder:
        with pytest.raises(GeocoderUnavailable, match="ConnectError"):
            geocoder.lookup(QUERY)
        assert geocoder.requests_sent == 3
    assert clock.sleeps == [1.0, 2.0]


def test_bad_request_is_not_retried(server: FakeGeocodeServer, geocoder: Geocoder, provider: str) -> None:
    server.enqueue(error(provider, 400, "Invalid Request"))
    with pytest.raises(GeocoderError, match="HTTP 400") as caught:
        geocoder.lookup(QUERY)
    assert type(caught.value) is GeocoderError
    assert geocoder.requests_sent == 1


def test_a_bare_404_is_a_wrong_url_not_a_missing_place(
    server: FakeGeocodeServer, provider: str, clock: FakeClock
) -> None:
    with (
        make_geocoder(
            provider,
            KEYS[provider],
            base_url=server.url + "/wrong/prefix",
            clock=clock,
            sleep=clock.sleep,
        ) as geocoder,
        pytest.raises(GeocoderError, match="HTTP 404"),
    ):
        geocoder.lookup(QUERY)


# Configuration


def test_factory_refuses_bad_configuration() -> None:
    with pytest.raises(ConfigError, match="Unknown geocoding provider"):
        make_geocoder("google", "k")
    with pytest.raises(ConfigError, match="needs an API key"):
        make_geocoder("locationiq", None)
    with pytest.raises(ConfigError, match="needs an API key"):
        make_geocoder("opencage", "")
    with pytest.raises(ConfigError, match="needs a base URL: set GEOCODER_BASE_URL"):
        make_geocoder("nominatim", None)
    with pytest.raises(ConfigError, match="not http"):
        make_geocoder("nominatim", None, base_url="nominatim.internal")


def test_factory_defaults_match_the_free_tiers() -> None:
    for name in ("LocationIQ", "opencage"):
        with make_geocoder(name, "k") as geocoder:
            assert geocoder._limiter.interval == 1.0
    with make_geocoder("locationiq", "k", requests_per_second=4) as geocoder:
        assert geocoder._limiter.interval == 0.25
    with make_geocoder("locationiq", "k") as geocoder:
        assert str(geocoder._client.base_url) == "https://us1.locationiq.com"
    with make_geocoder("opencage", "k") as geocoder:
        assert str(geocoder._client.base_url) == "https://api.opencagedata.com"


# Rate limiting


def test_limiter_spaces_calls() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2, clock=clock, sleep=clock.sleep)
    for _ in range(4):
        limiter.wait()
    assert clock.sleeps == [0.5, 0.5, 0.5]
    clock.now += 5  # time passed doing other work: no need to wait
    limiter.wait()
    assert clock.sleeps == [0.5, 0.5, 0.5]


def test_lookups_are_spaced_at_the_provider_rate(
    hit_server: FakeGeocodeServer, geocoder: Geocoder, clock: FakeClock
) -> None:
    for _ in range(3):
        geocoder.lookup(QUERY)
    assert clock.sleeps == [1.0, 1.0]


def test_retry_wait_also_satisfies_the_limiter(server: FakeGeocodeServer, provider: str, clock: FakeClock) -> None:
    server.enqueue(error(provider, 500, "Internal Server Error"), hit(provider))
    with connect(server, clock, requests_per_second=0.25, backoff=1.0) as geocoder:
        geocoder.lookup(QUERY)
    # the 1 s backoff, then 3 s more so the two requests are 4 s apart
    assert clock.sleeps == [1.0, 3.0]


def test_real_clock_spacing(hit_server: FakeGeocodeServer, provider: str) -> None:
    rate = 20.0
    with make_geocoder(provider, KEYS[provider], base_url=hit_server.url, requests_per_second=rate) as geocoder:
        for _ in range(6):
            geocoder.lookup(QUERY)
    # The first request also opens the connection, which delays its arrival and
    # shortens the first gap as the server sees it; measure the five after it.
    arrivals = [r.at for r in hit_server.requests[1:]]
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    assert len(gaps) == 4
    # Sends are >= 1/rate apart. Arrivals are seen through thread scheduling on a
    # busy machine, which can shift any one of them, so assert the span: five
    # requests cannot arrive in less than four intervals.
    assert sum(gaps) >= len(gaps) / rate - 0.005, gaps


def test_parse_retry_after() -> None:
    now = 1_781_532_312.0
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after(" 0 ", now) == 0.0
    http_date = email.utils.formatdate(now + 45, usegmt=True)
    assert parse_retry_after(http_date, now) == 45.0
    assert parse_retry_after(email.utils.formatdate(now - 45, usegmt=True), now) == 0
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("", now) is None
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("-5", now) is None


# Secrets


def test_redact_masks_key_parameters_and_literal_secrets() -> None:
    secret = "pk.7f3a+9c/1e=5b"
    url = "https://us1.locationiq.com/v1/search?key=pk.7f3a%2B9c%2F1e%3D5b&q=Ruaka"
    masked = "https://us1.locationiq.com/v1/search?key=***&q=Ruaka"
    assert redact(url, [secret]) == masked
    assert redact(f"api_key={secret} then {secret}", [secret]) == "api_key=*** then ***"
    assert redact("GET /geocode/v1/json?q=x&key=abc123", []) == ("GET /geocode/v1/json?q=x&key=***")
    quoted = "pk.7f3a%2B9c%2F1e%3D5b"
    assert secret not in redact(f"{secret} {quoted}", [secret])
    assert quoted not in redact(f"{secret} {quoted}", [secret])
    assert redact("nothing secret here", ["", "pk.x"]) == "nothing secret here"


def _scenario(name: str, provider: str, server: FakeGeocodeServer) -> dict[str, Any]:
    """Script the server for one failure; return options for the client."""
    if name == "auth":
        server.enqueue(error(provider, 401, "Invalid key"))
    elif name == "quota":
        server.enqueue(QUOTA_SPENT[provider]())
    elif name == "server_errors":
        server.enqueue(*[error(provider, 500, "Internal Server Error")] * 3)
    elif name == "timeouts":
        server.enqueue(*[slow(hit(provider), 2.0)] * 3)
        return {"timeout": 0.2}
    elif name == "refused":
        return {"base_url": f"http://127.0.0.1:{free_port()}"}
    return {}


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        ("auth", GeocoderAuthError),
        ("quota", GeocoderQuotaExhausted),
        ("server_errors", GeocoderUnavailable),
        ("timeouts", GeocoderUnavailable),
        ("refused", GeocoderUnavailable),
    ],
)
def test_key_never_leaks(
    server: FakeGeocodeServer,
    provider: str,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    scenario: str,
    expected: type[Exception],
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx and httpcore included
    key = KEYS[provider]
    options = _scenario(scenario, provider, server)
    options.setdefault("base_url", server.url)
    with (
        make_geocoder(provider, key, clock=clock, sleep=clock.sleep, max_attempts=3, **options) as geocoder,
        pytest.raises(expected) as caught,
    ):
        geocoder.lookup(QUERY)
    exc = caught.value
    if scenario != "refused":
        assert server.requests and server.requests[0].params["key"] == key
    if scenario in ("server_errors", "timeouts", "refused"):
        assert "retry 1 of 2" in caplog.text
    tb = "".join(traceback.format_exception(exc))
    for text in (str(exc), repr(exc), tb, caplog.text):
        assert key not in text
    assert exc.__cause__ is None
    assert exc.__context__ is None or exc.__suppress_context__


def test_httpx_request_log_carries_no_key(
    hit_server: FakeGeocodeServer,
    geocoder: Geocoder,
    provider: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    # The CLI quiets httpx to WARNING; this test wants its request line.
    caplog.set_level(logging.DEBUG, logger="httpx")
    geocoder.lookup(QUERY)
    assert "HTTP Request: GET" in caplog.text
    assert KEYS[provider] not in caplog.text
    assert hit_server.requests[0].params["key"] == KEYS[provider]
