"""S3 reads never hang a run: a silent endpoint fails the file after the read timeout."""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from fleettickets.errors import FleetTicketsError
from fleettickets.ingest import run_ingest
from fleettickets.settings import Settings
from fleettickets_dev.sample_stream import write_sample_stream
from tests.fault_proxy import fault_proxy
from tests.stream_tools import PREFIX, db_state, expected_state, upload


def test_a_stalled_s3_read_fails_the_file_after_the_read_timeout(settings: Settings, tmp_path: Path) -> None:
    stream = write_sample_stream(tmp_path / "s", baseline_rows=200, deltas=1, delta_rows=20)
    upload(settings, stream)
    moto_port = urlsplit(settings.s3_endpoint).port
    assert moto_port is not None
    with fault_proxy(moto_port, match=b"/changes/" + stream[0].name.encode(), pass_bytes=4096, delay=60) as proxy:
        stalled = Settings(**{**settings.__dict__, "s3_endpoint": proxy.endpoint, "s3_read_timeout_seconds": 2.0})
        started = time.monotonic()
        with pytest.raises(FleetTicketsError) as failure:
            run_ingest(stalled, apply=True)
        seconds = time.monotonic() - started
        assert proxy.stalls == 1
    assert 2 <= seconds < 15, seconds
    message = str(failure.value)
    assert message.startswith(f"{PREFIX}changes/{stream[0].name}: reading it failed (ReadTimeoutError")
    assert message.endswith("nothing from this file was applied; the next run retries it")
    with psycopg.connect(settings.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM tickets.ingest_files").fetchone() == (0,)
        assert conn.execute("SELECT status FROM tickets.ingest_runs").fetchall() == [("failed",)]
    assert run_ingest(settings, apply=True).ok
    assert db_state(settings.database_url) == expected_state(stream)


def test_the_read_timeout_is_a_setting() -> None:
    assert (
        Settings.from_env({"RUSTFS_READ_TIMEOUT_SECONDS": "5"}, env_file=Path(os.devnull)).s3_read_timeout_seconds == 5
    )
    with pytest.raises(FleetTicketsError, match="RUSTFS_READ_TIMEOUT_SECONDS must be a positive number"):
        Settings.from_env({"RUSTFS_READ_TIMEOUT_SECONDS": "0"}, env_file=Path(os.devnull))
