"""The dead-man's switch: after each run a push monitor hears success, failure, or nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest

from fleettickets.db import lock_key
from fleettickets.heartbeat import fail_url
from fleettickets.settings import Settings
from fleettickets_dev.localdb import free_port
from tests.stream_tools import job_env, run_cli

TOKEN = "5b9e2c71-hb-secret-path"


class Monitor:
    """A push monitor on 127.0.0.1 that records every ping it receives."""

    def __init__(self) -> None:
        self.pings: list[tuple[str, str, str]] = []
        monitor = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                monitor.pings.append((self.command, self.path, body))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

            do_GET = do_POST = _record

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ping/{TOKEN}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def monitor() -> Iterator[Monitor]:
    m = Monitor()
    yield m
    m.server.shutdown()
    m.server.server_close()


def ingest(db_url: str, settings: Settings, tmp_path: Path, url: str, *args: str):  # type: ignore[no-untyped-def]
    return run_cli(["ingest", "--apply", *args], job_env(db_url, settings, HEARTBEAT_URL=url), tmp_path)


def test_a_successful_run_sends_a_get(db_url: str, s3_settings: Settings, tmp_path: Path, monitor: Monitor) -> None:
    result = ingest(db_url, s3_settings, tmp_path, monitor.url)
    assert result.returncode == 0, result.stderr
    assert monitor.pings == [("GET", f"/ping/{TOKEN}", "")]


def test_a_failed_run_posts_its_summary_to_fail(
    db_url: str, s3_settings: Settings, tmp_path: Path, monitor: Monitor
) -> None:
    missing = Settings(**{**s3_settings.__dict__, "s3_bucket": "no-such-bucket"})
    result = ingest(db_url, missing, tmp_path, monitor.url)
    assert result.returncode == 1
    [(method, path, body)] = monitor.pings
    assert (method, path) == ("POST", f"/ping/{TOKEN}/fail")
    assert body.startswith("ingest failed: ") and "no-such-bucket" in body
    assert TOKEN[:8] not in result.stdout + result.stderr


def test_a_dry_run_pings_nothing(db_url: str, s3_settings: Settings, tmp_path: Path, monitor: Monitor) -> None:
    result = run_cli(["ingest"], job_env(db_url, s3_settings, HEARTBEAT_URL=monitor.url), tmp_path)
    assert result.returncode == 0, result.stderr
    assert monitor.pings == []


def test_a_run_that_finds_the_lock_held_pings_nothing(
    db_url: str, s3_settings: Settings, tmp_path: Path, monitor: Monitor
) -> None:
    with psycopg.connect(db_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (lock_key("ingest"),))
        result = ingest(db_url, s3_settings, tmp_path, monitor.url, "--lock-wait", "0")
    assert result.returncode == 75, result.stderr
    assert monitor.pings == []


def test_an_unreachable_monitor_is_a_warning_and_the_run_succeeds(
    db_url: str, s3_settings: Settings, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{free_port()}/ping/{TOKEN}"
    result = ingest(db_url, s3_settings, tmp_path, url)
    assert result.returncode == 0, result.stderr
    assert "heartbeat ping failed" in result.stderr
    assert TOKEN[:8] not in result.stdout + result.stderr


def test_geocoding_runs_ping_their_own_monitor(db_url: str, tmp_path: Path, monitor: Monitor) -> None:
    # No cluster to ask about: the provider is never called, the run succeeds.
    env = {
        **job_env(db_url, Settings()),
        "HEARTBEAT_GEOCODE_URL": monitor.url,
        "HEARTBEAT_URL": "http://127.0.0.1:9/x",
        "GEOCODER_PROVIDER": "locationiq",
        "GEOCODER_API_KEY": "pk.test-key-1234",
        "GEOCODER_BASE_URL": "http://127.0.0.1:9",
    }
    result = run_cli(["geocode-clusters", "--apply"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert monitor.pings == [("GET", f"/ping/{TOKEN}", "")]


def test_the_fail_url_keeps_a_query_string() -> None:
    assert fail_url("https://hc-ping.com/abc/") == "https://hc-ping.com/abc/fail"
    assert fail_url("https://kuma.example/api/push/X1?status=up") == "https://kuma.example/api/push/X1/fail?status=up"


def test_the_url_token_is_a_secret_and_the_words_around_it_are_not() -> None:
    settings = Settings(
        heartbeat_url=f"https://hc-ping.com/ping/{TOKEN}",
        heartbeat_geocode_url="https://k.example/api/push/Q7w9Xk2LmN?status=up",
    )
    assert TOKEN in settings.secrets() and "Q7w9Xk2LmN" in settings.secrets()
    assert not {"ping", "https", "push", "status=up"} & set(settings.secrets())
    assert settings.redacted()["HEARTBEAT_URL"] == "***"
