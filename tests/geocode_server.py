"""A fake geocoding provider on 127.0.0.1 speaking LocationIQ, OpenCage or Nominatim."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

DATA = Path(__file__).parent / "data" / "geocode"

PATHS = {
    "locationiq": "/v1/search",
    "opencage": "/geocode/v1/json",
    "nominatim": "/search",
}


@dataclass
class Reply:
    """One scripted reply: a JSON-able body, or str/bytes sent verbatim."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering, to trigger timeouts


@dataclass(frozen=True)
class SeenRequest:
    path: str
    params: dict[str, str]
    headers: dict[str, str]  # names in lower case
    at: float  # time.monotonic() on arrival


def sample(name: str) -> Any:
    """The parsed body of tests/data/geocode/<name>.json."""
    return json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))


def sample_reply(name: str, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, sample(name), dict(headers or {}))


def locationiq_hit(lat: float, lon: float, display_name: str, importance: float = 0.5) -> Reply:
    place = dict(sample("locationiq_search_kayole_junction")[0])
    place.update(lat=str(lat), lon=str(lon), display_name=display_name, importance=importance)
    return Reply(200, [place])


def locationiq_error(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, {"error": message}, dict(headers or {}))


def opencage_hit(lat: float, lng: float, formatted: str, confidence: int = 9) -> Reply:
    body = sample("opencage_geocode_kayole_junction")
    body["results"][0].update(geometry={"lat": lat, "lng": lng}, formatted=formatted, confidence=confidence)
    return Reply(200, body)


def opencage_error(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    body = sample("opencage_geocode_no_results")
    body["status"] = {"code": status, "message": message}
    return Reply(status, body, dict(headers or {}))


def malformed(status: int = 200) -> Reply:
    return Reply(status, '[{"lat": "-1.27", "lon": ')


def slow(reply: Reply, delay: float) -> Reply:
    return Reply(reply.status, reply.body, dict(reply.headers), delay)


def not_found_reply(provider: str) -> Reply:
    if provider == "locationiq":
        return sample_reply("locationiq_error_unable_to_geocode", 404)
    if provider == "opencage":
        return sample_reply("opencage_geocode_no_results")
    return sample_reply("nominatim_search_empty")


def invalid_key_reply(provider: str) -> Reply:
    if provider == "opencage":
        return sample_reply("opencage_error_401", 401)
    return sample_reply("locationiq_error_invalid_key", 401)


class FakeGeocodeServer:
    """A threaded HTTP server on 127.0.0.1:<free port> with scripted replies.

    Replies come from the queue first (in order), then from the per-query table
    (by `q`), then the provider's "no result" reply. Every request is recorded::

        with FakeGeocodeServer("locationiq", key="pk.test") as server:
            server.answer("Ruaka Stage, Kenya", locationiq_hit(-1.2, 36.8, "Ruaka"))
            server.enqueue(locationiq_error(429, "Rate Limited Second"))
            geocoder = make_geocoder("locationiq", "pk.test", base_url=server.url)
    """

    def __init__(self, provider: str = "locationiq", *, key: str | None = None) -> None:
        if provider not in PATHS:
            raise ValueError(f"unknown provider {provider!r}")
        self.provider = provider
        self.key = key  # when set, any other key gets the provider's 401
        self.requests: list[SeenRequest] = []
        self._queue: deque[Reply] = deque()
        self._table: dict[str, Reply] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("server not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def enqueue(self, *replies: Reply) -> None:
        with self._lock:
            self._queue.extend(replies)

    def answer(self, query: str, reply: Reply) -> None:
        with self._lock:
            self._table[query] = reply

    def queries(self) -> list[str]:
        return [r.params.get("q", "") for r in self.requests]

    def start(self) -> FakeGeocodeServer:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.01},
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeGeocodeServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _reply_for(self, path: str, params: dict[str, str]) -> Reply:
        if path != PATHS[self.provider]:
            return Reply(404, "<html><body><h1>404 Not Found</h1></body></html>")
        if self.key is not None and params.get("key") != self.key:
            return invalid_key_reply(self.provider)
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            scripted = self._table.get(params.get("q", ""))
        return scripted or not_found_reply(self.provider)


def _handler_for(server: FakeGeocodeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            split = urlsplit(self.path)
            params = dict(parse_qsl(split.query, keep_blank_values=True))
            headers = {k.lower(): v for k, v in self.headers.items()}
            seen = SeenRequest(split.path, params, headers, time.monotonic())
            with server._lock:
                server.requests.append(seen)
            reply = server._reply_for(split.path, params)
            if reply.delay and server._stopping.wait(reply.delay):
                return
            self._send(reply)

        def _send(self, reply: Reply) -> None:
            if isinstance(reply.body, bytes):
                data = reply.body
            elif isinstance(reply.body, str):
                data = reply.body.encode()
            else:
                data = json.dumps(reply.body).encode()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test); nothing to answer

        def log_message(self, format: str, *args: Any) -> None:
            pass  # request lines carry the API key; tests assert logs never do

    return Handler


# Test keys, one per keyed provider; tests assert they never leak.
KEYS = {
    "locationiq": "pk.7f3a9c1e5b2d4a6f8e0c1b3d",
    "opencage": "6d0e711d72d74daeb2b0bfd2a5cdfdba",
}


@pytest.fixture(params=["locationiq", "opencage"])
def provider(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(provider: str) -> Iterator[FakeGeocodeServer]:
    with FakeGeocodeServer(provider, key=KEYS[provider]) as fake:
        yield fake
