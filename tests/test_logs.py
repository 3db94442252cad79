"""What the commands print: JSON events off a terminal, a progress bar on one, never a secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from fleettickets.settings import Settings
from fleettickets.source import parse_file_ts
from fleettickets_dev.sample_stream import write_sample_stream
from tests.stream_tools import job_env, run_cli, upload

GEOCODER_KEY = "pk.geocoder-key-7f3a9c"
PASSWORD = "pw-never-printed-41d2"


@pytest.fixture
def settings(db_url: str, s3_settings: Settings) -> Settings:
    # The test servers trust local connections, so a password in the URL is sent
    # nowhere that checks it; keep a real one if the server has it.
    parts = urlsplit(db_url)
    if parts.password is None:
        netloc = f"{parts.username or 'postgres'}:{PASSWORD}@{parts.hostname}:{parts.port}"
        db_url = parts._replace(netloc=netloc).geturl()
    return Settings(**{**s3_settings.__dict__, "database_url": db_url})


def secret_env(settings: Settings, now: datetime | None = None) -> dict[str, str]:
    return job_env(
        settings.database_url, settings, now=now, GEOCODER_PROVIDER="locationiq", GEOCODER_API_KEY=GEOCODER_KEY
    )


def secrets_of(env: dict[str, str]) -> list[str]:
    found = Settings.from_env(env, env_file=Path("/nonexistent")).secrets()
    assert len(found) == 4, "DATABASE_URL password, both bucket keys and the geocoder key"
    return found


def json_events(stderr: str) -> list[dict]:
    """Every line of stderr is one JSON object (the final `Error: …` line of a failure aside)."""
    lines = stderr.splitlines()
    if lines and lines[-1].startswith("Error: "):
        lines = lines[:-1]
    return [json.loads(line) for line in lines]


def test_ingest_logs_one_json_event_per_line_and_no_secret(settings: Settings, tmp_path: Path) -> None:
    stream = write_sample_stream(tmp_path / "s", baseline_rows=60, deltas=3, delta_rows=10, hard_cases=True)
    bad = tmp_path / "2099-01-01T06-00-00.csv"
    bad.write_text("id,cluster\nWOT1,Kayole\n")
    upload(settings, stream)
    # Five minutes after the newest file, inside export hours: a healthy pipeline.
    env = secret_env(settings, now=parse_file_ts(stream[-1].name) + timedelta(minutes=5))
    runs = [
        run_cli(["-v", "migrate", "--dry-run"], env, tmp_path),
        run_cli(["-v", "ingest"], env, tmp_path),
        run_cli(["-v", "ingest", "--apply"], env, tmp_path),
        run_cli(["status"], env, tmp_path),
        run_cli(["status", "--json"], env, tmp_path),
        run_cli(["status", "--check"], env, tmp_path),
    ]
    upload(settings, [bad])
    runs.append(run_cli(["-v", "ingest", "--apply"], env, tmp_path))
    runs.append(run_cli(["status", "--check"], env, tmp_path))
    runs.append(run_cli(["migrate"], {**env, "RUSTFS_ENDPOINT": "http://127.0.0.1:1"}, tmp_path))
    assert [r.returncode for r in runs] == [0, 0, 0, 0, 0, 0, 1, 1, 0], [r.stderr for r in runs]

    for result in runs:
        events = json_events(result.stderr)
        assert all(e["run_id"] and e["level"] and e["msg"] for e in events)
        for secret in secrets_of(env):
            assert secret not in result.stdout + result.stderr

    applied = json_events(runs[2].stderr)
    files = [e for e in applied if e.get("event") == "file"]
    assert [e["file"] for e in files] == [f"{settings.inc_prefix}changes/{p.name}" for p in stream]
    run_id = files[0]["run_id"]
    for event in files:
        assert event["run_id"] == run_id and event["applied"] is True
        assert {"rows_read", "inserted", "updated", "unchanged", "stale", "rejected"} <= set(event)
        assert event["read_load_seconds"] >= 0 and event["merge_seconds"] >= 0
    [closing] = [e for e in applied if e.get("event") == "run"]
    assert closing["ok"] is True and closing["files"] == len(stream) and closing["archived"] == len(stream)
    assert closing["seconds"] > 0 and closing["run_id"] == run_id
    assert any(e["level"] == "warning" and "row rejected" in e["msg"] for e in applied)

    failed = json_events(runs[6].stderr)
    assert [e for e in failed if e.get("event") == "run"][0]["ok"] is False
    assert runs[6].stderr.splitlines()[-1].startswith(f"Error: {settings.inc_prefix}changes/{bad.name}")


def test_quiet_keeps_only_warnings(settings: Settings, tmp_path: Path) -> None:
    upload(settings, write_sample_stream(tmp_path / "s", baseline_rows=20, deltas=1, delta_rows=5))
    result = run_cli(["-q", "ingest", "--apply"], secret_env(settings), tmp_path)
    assert result.returncode == 0 and result.stderr == ""


def test_progress_bar_only_on_a_terminal(settings: Settings, tmp_path: Path) -> None:
    big = tmp_path / "2026-06-15T06-00-00.csv"
    padding = "x" * 2000
    big.write_text("ticket_id,note\n" + "".join(f"WOT{i:07d},{padding}\n" for i in range(2500)))
    assert big.stat().st_size > 4 << 20
    env = {**secret_env(settings), "COLUMNS": "100"}
    args = [sys.executable, "-m", "fleettickets", "ingest", "--inc-csv", str(big)]

    leader, follower = os.openpty()
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: _drain(leader, chunks))
    reader.start()
    on_tty = subprocess.run(args, stdout=subprocess.PIPE, stderr=follower, env=env, cwd=tmp_path, timeout=120)
    os.close(follower)
    reader.join(timeout=10)
    os.close(leader)
    terminal = b"".join(chunks).decode(errors="replace")
    assert on_tty.returncode == 0
    assert "2026-06-15T06-00-00.csv" in terminal and "100%" in terminal, terminal
    assert "would apply" in terminal and not terminal.lstrip().startswith("{"), "plain text on a terminal"

    piped = run_cli(["ingest", "--inc-csv", str(big)], env, tmp_path)
    assert piped.returncode == 0 and "%" not in piped.stderr.replace("%%", "")
    json_events(piped.stderr)


def _drain(fd: int, chunks: list[bytes]) -> None:
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            return
        if not data:
            return
        chunks.append(data)
