"""The earlier loader's entry point: its flags map to fleettickets commands, its cron line still works."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fleettickets.settings import Settings
from fleettickets_dev.sample_stream import write_sample_stream
from import_tickets import commands, parse
from tests.stream_tools import bucket_keys, db_state, expected_state, job_env, upload

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("--from-bucket --apply", [["ingest", "--apply"]]),
        ("--from-bucket", [["ingest"]]),
        ("--apply", [["ingest", "--apply"]]),
        (
            "--inc-csv a.csv --inc-csv b.csv --apply",
            [["ingest", "--apply", "--inc-csv", "a.csv", "--inc-csv", "b.csv"]],
        ),
        ("--geocode-clusters --apply", [["geocode-clusters", "--apply"]]),
        ("--geocode-locations", [["geocode-locations"]]),
        ("--capture-history --apply", [["capture-history", "--apply"]]),
        ("--from-bucket --capture-history --apply", [["ingest", "--apply"], ["capture-history", "--apply"]]),
    ],
)
def test_old_flags_map_to_commands(old: str, new: list[list[str]]) -> None:
    assert commands(parse(old.split())) == new


def test_the_deployed_cron_line_ingests_the_bucket(db_url: str, s3_settings: Settings, tmp_path: Path) -> None:
    stream = write_sample_stream(tmp_path / "stream", baseline_rows=50, deltas=2, delta_rows=10)
    settings = Settings(**{**s3_settings.__dict__, "database_url": db_url})
    upload(settings, stream)
    result = subprocess.run(
        [sys.executable, "import_tickets.py", "--from-bucket", "--apply"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=job_env(db_url, settings),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "running `fleettickets ingest --apply`" in result.stderr.splitlines()[0]
    assert db_state(db_url) == expected_state(stream)
    assert all("/processed/" in key for key in bucket_keys(settings))


def test_a_failing_command_passes_its_exit_status_on(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "import_tickets.py"), "--apply"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert result.returncode == 2 and "are not set" in result.stderr
