"""Geocoding clients for LocationIQ, OpenCage and Nominatim, returning plain answers."""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any, ClassVar, Literal

import httpx

from fleettickets import __version__
from fleettickets.errors import (
    ConfigError,
    GeocoderAuthError,
    GeocoderError,
    GeocoderQuotaExhausted,
    GeocoderUnavailable,
)
from fleettickets.logs import redact
from fleettickets.settings import GEOCODER_PROVIDERS

logger = logging.getLogger(__name__)

USER_AGENT = f"fleettickets/{__version__} (field-ops incident ticket map)"

# (min_lon, min_lat, max_lon, max_lat), the order both providers expect.
BiasBox = tuple[float, float, float, float]

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


@dataclass(frozen=True)
class GeocodeAnswer:
    """A provider's answer: a point ("ok") or a definite, cacheable "not_found".

    `confidence` is on the provider's own scale: LocationIQ/Nominatim `importance`
    (0-1, a prominence rank) or OpenCage `confidence` (0-10, bounding-box size).
    """

    status: Literal["ok", "not_found"]
    latitude: float | None
    longitude: float | None
    confidence: float | None
    display_name: str | None
    provider: str
    query: str


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date)."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


class RateLimiter:
    """Spaces calls at least 1/rate seconds apart; clock and sleep are injectable."""

    def __init__(
        self,
        requests_per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if requests_per_second <= 0:
            raise ValueError("requests_per_second must be positive")
        self.interval = 1.0 / requests_per_second
        self._clock = clock
        self._sleep = sleep
        self._next_at: float | None = None

    def wait(self) -> None:
        now = self._clock()
        if self._next_at is not None and now < self._next_at:
            self._sleep(self._next_at - now)
            now = max(self._clock(), self._next_at)
        self._next_at = now + self.interval


class _KeyedTransport(httpx.BaseTransport):
    """Adds the API key to the URL only on the way out.

    httpx logs each request URL at INFO and puts it in its exceptions; adding the
    key below the client keeps it out of both.
    """

    def __init__(self, inner: httpx.BaseTransport, param: str, key: str) -> None:
        self._inner = inner
        self._param = param
        self._key = key

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        keyed = httpx.Request(
            request.method,
            request.url.copy_add_param(self._param, self._key),
            headers=request.headers,
            stream=request.stream,
            extensions=request.extensions,
        )
        return self._inner.handle_request(keyed)

    def close(self) -> None:
        self._inner.close()


@dataclass(frozen=True)
class _Retry:
    reason: str
    wait: float | None = None  # None: use exponential backoff


class Geocoder:
    """Shared request loop: throttling, bounded retries, status mapping, redaction."""

    provider: ClassVar[str]
    label: ClassVar[str]
    path: ClassVar[str]
    default_base_url: ClassVar[str | None]
    key_required: ClassVar[bool] = True
    # LocationIQ's free tier allows 2/s but only 60/min, so 1/s is what lasts;
    # OpenCage's trial and the public Nominatim both allow 1/s.
    default_rate: ClassVar[float] = 1.0

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        requests_per_second: float | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_attempts: int = 4,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        max_retry_after: float = 120.0,
        user_agent: str = USER_AGENT,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if self.key_required and not api_key:
            raise ConfigError(f"{self.label} needs an API key: set GEOCODER_API_KEY.")
        base_url = base_url or self.default_base_url
        if not base_url:
            raise ConfigError(f"{self.label} needs a base URL: set GEOCODER_BASE_URL.")
        try:
            url = httpx.URL(base_url)
        except httpx.InvalidURL:
            url = None
        if url is None or url.scheme not in ("http", "https") or not url.host:
            raise ConfigError(f"{self.label} base URL {base_url!r} is not http(s).")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.requests_sent = 0
        self.max_attempts = max_attempts
        self._refused: tuple[type[GeocoderError], str] | None = None
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._max_retry_after = max_retry_after
        self._sleep = sleep
        self._secrets = [api_key] if api_key else []
        self._limiter = RateLimiter(requests_per_second or self.default_rate, clock=clock, sleep=sleep)
        inner = transport or httpx.HTTPTransport()
        if api_key:
            inner = _KeyedTransport(inner, "key", api_key)
        self._client = httpx.Client(
            base_url=url,
            transport=inner,
            timeout=timeout,
            headers={"User-Agent": user_agent, "Accept": "application/json"},
        )

    def __enter__(self) -> Geocoder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def lookup(self, query: str, *, bias_box: BiasBox | None = None) -> GeocodeAnswer:
        """Geocode one query; failures raise a GeocoderError, never "not_found".

        After a refused key or a spent quota every later call raises the same
        error without sending, so a loop that carries on cannot burn requests.
        """
        query = " ".join(query.split())
        if not query:
            raise ValueError("nothing to geocode: the query is blank")
        if self._refused is not None:
            kind, message = self._refused
            raise kind(message)
        params = self._params(query, bias_box)
        reason = ""
        for attempt in range(1, self.max_attempts + 1):
            self._limiter.wait()
            self.requests_sent += 1
            try:
                response = self._client.get(self.path, params=params)
            except httpx.TimeoutException as exc:
                outcome: GeocodeAnswer | _Retry = _Retry(f"timed out ({type(exc).__name__})")
            except httpx.RequestError as exc:
                outcome = _Retry(f"{type(exc).__name__}: {self._redact(str(exc))}")
            else:
                try:
                    outcome = self._interpret(response, query)
                except (GeocoderAuthError, GeocoderQuotaExhausted) as refused:
                    self._refused = (type(refused), str(refused))
                    raise
            if isinstance(outcome, GeocodeAnswer):
                return outcome
            reason = outcome.reason
            if attempt == self.max_attempts:
                break
            wait = outcome.wait
            if wait is None:
                wait = min(self._backoff * 2 ** (attempt - 1), self._max_backoff)
            elif wait > self._max_retry_after:
                raise GeocoderUnavailable(
                    f"{self.label} asked to wait {wait:.0f} s before retrying ({reason}); run again later."
                )
            logger.warning(
                "%s: %s for %r; retry %d of %d in %.1f s",
                self.label,
                reason,
                query,
                attempt,
                self.max_attempts - 1,
                wait,
            )
            self._sleep(wait)
        raise GeocoderUnavailable(
            f"{self.label} failed {self.max_attempts} times for {query!r}; last: {reason}. Run again later."
        )

    def _redact(self, text: str) -> str:
        return redact(text, self._secrets)

    def _interpret(self, response: httpx.Response, query: str) -> GeocodeAnswer | _Retry:
        try:
            body: Any = response.json()
        except ValueError:
            body = None
            if response.status_code == 200:
                return _Retry("malformed JSON in a 200 reply")
        return self._by_code(response.status_code, body, response, query)

    def _by_code(self, code: int, body: Any, response: httpx.Response, query: str) -> GeocodeAnswer | _Retry:
        message = self._error_message(body) or response.reason_phrase or "no message"
        detail = self._redact(f"HTTP {code}: {message}")
        if code == 200:
            return self._parse(body, query)
        if code in (401, 403):
            raise GeocoderAuthError(
                f"{self.label} refused the API key ({detail}). Check GEOCODER_API_KEY "
                "and that the service is enabled for it."
            )
        if code == 402:
            raise GeocoderQuotaExhausted(
                f"{self.label} quota is spent ({detail}). Results so far are kept; "
                "run again after the daily reset (00:00 UTC) or upgrade the plan."
            )
        if code == 429:
            return self._too_many(message, detail, response)
        if code == 408 or code >= 500:
            return _Retry(detail)
        if code == 404:
            answer = self._not_found(message, query)
            if answer is not None:
                return answer
        raise GeocoderError(
            f"{self.label} rejected the request ({detail}); check the base URL and query. This is not retried."
        )

    def _too_many(self, message: str, detail: str, response: httpx.Response) -> _Retry:
        header = response.headers.get("Retry-After")
        return _Retry(detail, parse_retry_after(header, time.time()))

    def _nothing(self, query: str) -> GeocodeAnswer:
        return GeocodeAnswer("not_found", None, None, None, None, self.provider, query)

    def _answer(
        self,
        query: str,
        latitude: Any,
        longitude: Any,
        confidence: Any,
        display_name: Any,
    ) -> GeocodeAnswer | _Retry:
        lat = _number(latitude, 90.0)
        lon = _number(longitude, 180.0)
        if lat is None or lon is None:
            return _Retry(f"unreadable coordinates {latitude!r}, {longitude!r}")
        return GeocodeAnswer(
            "ok",
            lat,
            lon,
            _number(confidence, float("inf")),
            display_name if isinstance(display_name, str) else None,
            self.provider,
            query,
        )

    def _params(self, query: str, bias_box: BiasBox | None) -> dict[str, str]:
        raise NotImplementedError

    def _parse(self, body: Any, query: str) -> GeocodeAnswer | _Retry:
        raise NotImplementedError

    def _error_message(self, body: Any) -> str | None:
        raise NotImplementedError

    def _not_found(self, message: str, query: str) -> GeocodeAnswer | None:
        return None


class LocationIQ(Geocoder):
    """LocationIQ forward geocoding (`/v1/search`, Nominatim's reply format)."""

    provider = "locationiq"
    label = "LocationIQ"
    path = "/v1/search"
    default_base_url: ClassVar[str | None] = "https://us1.locationiq.com"

    def _params(self, query: str, bias_box: BiasBox | None) -> dict[str, str]:
        params = {"q": query, "format": "json", "countrycodes": "ke", "limit": "1"}
        if bias_box is not None:
            params["viewbox"] = ",".join(str(float(v)) for v in bias_box)
            # viewbox alone only re-ranks; bounded=1 keeps results inside the box.
            params["bounded"] = "1"
        return params

    def _parse(self, body: Any, query: str) -> GeocodeAnswer | _Retry:
        if not isinstance(body, list):
            return _Retry("reply is not a JSON array of places")
        if not body:
            return self._nothing(query)
        hit = body[0] if isinstance(body[0], dict) else {}
        return self._answer(
            query,
            hit.get("lat", ""),
            hit.get("lon", ""),
            hit.get("importance"),
            hit.get("display_name"),
        )

    def _error_message(self, body: Any) -> str | None:
        error = body.get("error") if isinstance(body, dict) else None
        return error if isinstance(error, str) else None

    def _too_many(self, message: str, detail: str, response: httpx.Response) -> _Retry:
        lowered = message.lower()
        if "day" in lowered:
            raise GeocoderQuotaExhausted(
                f"{self.label} daily quota is spent ({detail}). Results so far are "
                "kept; run again after the reset at 00:00 UTC."
            )
        retry = super()._too_many(message, detail, response)
        if retry.wait is None and "minute" in lowered:
            return _Retry(detail, 60.0)  # the minute window must pass; 1-2 s won't do
        return retry

    def _not_found(self, message: str, query: str) -> GeocodeAnswer | None:
        # Only this body means "no result"; a bare 404 is a wrong URL, not an answer.
        if message.strip().lower() == "unable to geocode":
            return self._nothing(query)
        return None


class Nominatim(LocationIQ):
    """A self-hosted Nominatim (`/search`); same reply format, no key needed."""

    provider = "nominatim"
    label = "Nominatim"
    path = "/search"
    default_base_url = None
    key_required = False


class OpenCage(Geocoder):
    """OpenCage forward geocoding (`/geocode/v1/json`)."""

    provider = "opencage"
    label = "OpenCage"
    path = "/geocode/v1/json"
    default_base_url = "https://api.opencagedata.com"

    def _params(self, query: str, bias_box: BiasBox | None) -> dict[str, str]:
        params = {"q": query, "countrycode": "ke", "limit": "1", "no_annotations": "1"}
        if bias_box is not None:
            params["bounds"] = ",".join(str(float(v)) for v in bias_box)
        return params

    def _by_code(self, code: int, body: Any, response: httpx.Response, query: str) -> GeocodeAnswer | _Retry:
        # A 200 whose body reports another code is judged by the body's code.
        body_code = _status(body).get("code")
        if code == 200 and isinstance(body_code, int) and body_code != 200:
            code = body_code
        return super()._by_code(code, body, response, query)

    def _parse(self, body: Any, query: str) -> GeocodeAnswer | _Retry:
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list):
            return _Retry("reply has no results list")
        if not results:
            return self._nothing(query)
        hit = results[0] if isinstance(results[0], dict) else {}
        geometry = hit.get("geometry")
        geometry = geometry if isinstance(geometry, dict) else {}
        return self._answer(
            query,
            geometry.get("lat", ""),
            geometry.get("lng", ""),
            hit.get("confidence"),
            hit.get("formatted"),
        )

    def _error_message(self, body: Any) -> str | None:
        message = _status(body).get("message")
        return message if isinstance(message, str) else None


def _status(body: Any) -> dict[str, Any]:
    status = body.get("status") if isinstance(body, dict) else None
    return status if isinstance(status, dict) else {}


def _number(value: Any, limit: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if -limit <= number <= limit else None


_CLIENTS = {client.provider: client for client in (LocationIQ, OpenCage, Nominatim)}
# Settings names the providers (it validates GEOCODER_PROVIDER without loading httpx);
# a name there without a client here fails at import, not in a run.
PROVIDERS: dict[str, type[Geocoder]] = {name: _CLIENTS[name] for name in GEOCODER_PROVIDERS}


def make_geocoder(
    provider: str,
    api_key: str | None,
    base_url: str | None = None,
    requests_per_second: float | None = None,
    **options: Any,
) -> Geocoder:
    """Build the client for `provider` ("locationiq", "opencage" or "nominatim").

    `options` pass through to the client (timeout, max_attempts, backoff,
    max_retry_after, user_agent, clock, sleep, transport).
    """
    cls = PROVIDERS.get(provider.strip().lower())
    if cls is None:
        names = ", ".join(sorted(PROVIDERS))
        raise ConfigError(f"Unknown geocoding provider {provider!r}; use {names}.")
    return cls(
        api_key,
        base_url=base_url,
        requests_per_second=requests_per_second,
        **options,
    )
