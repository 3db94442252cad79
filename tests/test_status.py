"""status and status --check against real states: healthy, failed or killed runs, stale bucket, old schema."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from fleettickets import clock
from fleettickets.clock import EAT
from fleettickets.db import lock_key
from fleettickets.ingest import run_ingest
from fleettickets.migrate import default_migrations_dir, read_migrations
from fleettickets.settings import Settings
from fleettickets.status import GazetteerCount, HistoryFacts, report
from fleettickets_dev.faults import CRASH_EXIT_STATUS
from fleettickets_dev.localdb import free_port
from fleettickets_dev.sample_stream import write_sample_stream
from tests.stream_tools import PREFIX, job_env, run_cli, upload

MIGRATIONS = read_migrations(default_migrations_dir())


def recent_stream(folder: Path, newest_minutes_ago: int = 5) -> list[Path]:
    """A baseline and one delta, the delta named `newest_minutes_ago` before the pinned now (EAT)."""
    newest = clock.now().astimezone(EAT).replace(tzinfo=None, second=0, microsecond=0) - timedelta(
        minutes=newest_minutes_ago
    )
    return write_sample_stream(folder, baseline_rows=40, deltas=1, delta_rows=10, start=newest - timedelta(minutes=20))


def status(settings: Settings, *args: str, cwd: Path) -> tuple[int, str, str]:
    result = run_cli(["status", *args], job_env(settings.database_url, settings), cwd)
    return result.returncode, result.stdout, result.stderr


def test_healthy_pipeline(settings: Settings, tmp_path: Path) -> None:
    stream = recent_stream(tmp_path / "s")
    upload(settings, stream)
    run_ingest(settings, apply=True)
    # One daily row per EAT day from the baseline's day through today: two
    # when the stream (or this test) spans midnight.
    first_day = datetime.strptime(stream[0].stem, "%Y-%m-%dT%H-%M-%S").date()
    days = (clock.eat_day(clock.now()) - first_day).days + 1

    code, out, err = status(settings, "--check", cwd=tmp_path)
    assert (code, err) == (0, "") and out.startswith("healthy: last run ok at ") and out.count("\n") == 1
    code, out, _ = status(settings, cwd=tmp_path)
    assert code == 0
    for text in [
        f"{len(MIGRATIONS)} migrations applied; pending: none",
        "0 new file(s) waiting",
        f"{PREFIX}changes/{stream[-1].name}",
        "tickets    ",
        f"history    {days} day(s), ",
        "dashboard  installed",
        "healthy:",
    ]:
        assert text in out, out

    code, out, _ = status(settings, "--json", cwd=tmp_path)
    facts = json.loads(out)
    assert code == 0 and facts["healthy"] is True and facts["problems"] == []
    assert facts["schema"] == {"applied": len(MIGRATIONS), "pending": [], "error": None}
    assert facts["watermark"]["source_max_key"] == f"{PREFIX}changes/{stream[-1].name}"
    assert facts["watermark"]["newest_applied"]["archived_at"] is not None
    assert facts["bucket"]["waiting"] == 0 and facts["bucket"]["error"] is None
    [run] = facts["runs"]
    assert run["status"] == "ok" and run["files_applied"] == 2 and run["seconds"] >= 0
    assert facts["tickets"]["total"] == sum(facts["tickets"]["placed"].values()) > 0
    assert facts["gazetteer"] == {
        "clusters": {"rows": 0, "with_coordinates": 0},
        "locations": {"rows": 0, "with_coordinates": 0},
    }
    assert 40 <= facts["freshness"]["content_lag_hours"] <= 56, "the sample's content trails by two days"
    assert facts["thresholds"] == {
        "max_pending_minutes": 45,
        "max_silence_minutes": 60,
        "export_hours": "06:00-20:00 EAT",
    }


def test_failed_last_run_is_unhealthy(settings: Settings, tmp_path: Path) -> None:
    stream = recent_stream(tmp_path / "s")
    bad = tmp_path / stream[-1].name
    bad.write_text("id,cluster\nWOT1,Kayole\n")
    upload(settings, [stream[0], bad])
    assert run_cli(["ingest", "--apply"], job_env(settings.database_url, settings), tmp_path).returncode == 1

    code, out, _ = status(settings, "--check", cwd=tmp_path)
    assert code == 1
    assert out.startswith("unhealthy: last ingest run ") and out.count("\n") == 1
    assert f"failed: {PREFIX}changes/{bad.name}" in out and "no ticket_id column" in out
    text = status(settings, cwd=tmp_path)[1]
    assert "failed" in text and "1 new file(s) waiting" in text


def test_killed_run_is_unhealthy_but_a_live_run_is_not(settings: Settings, tmp_path: Path) -> None:
    upload(settings, recent_stream(tmp_path / "s"))
    env = job_env(settings.database_url, settings, FLEETTICKETS_CRASH_AT="before-commit:1")
    assert run_cli(["ingest", "--apply"], env, tmp_path).returncode == CRASH_EXIT_STATUS
    wait_for_backends_to_end(settings.database_url)
    checked = report(settings)
    assert checked.facts.runs[0].status == "interrupted"
    assert any("never finished" in p for p in checked.problems)

    # A run in progress holds the lock: its 'running' row is not a problem.
    with psycopg.connect(settings.database_url, autocommit=True) as live:
        live.execute("SELECT pg_advisory_lock(%s)", (lock_key("ingest"),))
        live.execute("INSERT INTO tickets.ingest_runs (run_id) VALUES ('live-run')")
        checked = report(settings)
        assert checked.facts.ingest_running is True
        assert [r.status for r in checked.facts.runs] == ["running", "interrupted"]
        assert not any("never finished" in p for p in checked.problems)
        holder = checked.facts.ingest_lock
        assert holder is not None
        assert (holder.pid, holder.run_id, holder.state) == (live.info.backend_pid, "live-run", "idle")
        assert holder.since == checked.facts.runs[0].started_at
        code, out, _ = status(settings, cwd=tmp_path)
        assert f"lock       ingest lock held by backend pid {live.info.backend_pid} " in out, out
        assert json.loads(status(settings, "--json", cwd=tmp_path)[1])["ingest_lock"]["run_id"] == "live-run"
    assert report(settings).facts.ingest_lock is None


def wait_for_backends_to_end(url: str) -> None:
    """The server ends a killed client's session (and its lock) a moment after the process dies."""
    deadline = time.monotonic() + 10
    with psycopg.connect(url, autocommit=True) as conn:
        while conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'fleettickets' AND pid <> pg_backend_pid()"
        ).fetchone() != (0,):
            assert time.monotonic() < deadline, "the killed run's session never ended"
            time.sleep(0.05)


def test_files_waiting_too_long_are_unhealthy(settings: Settings, tmp_path: Path) -> None:
    stream = recent_stream(tmp_path / "s")
    upload(settings, stream)
    assert report(settings).healthy, "files that just landed are not stale"
    # A file waits from when it landed, by the S3 server's own (real) clock.
    later = datetime.now(UTC) + timedelta(minutes=50)
    stale = report(settings, now=later)
    [problem] = [p for p in stale.problems if "waiting" in p]
    assert problem.startswith(f"2 file(s) waiting in changes/, oldest {PREFIX}changes/")
    assert problem.endswith("(limit 45)")
    assert not any("waiting" in p for p in report(settings, now=later, max_pending_minutes=90).problems)


def test_silence_counts_only_export_hours(settings: Settings, tmp_path: Path) -> None:
    day = datetime(2026, 6, 15, 8, 0)  # the sample stream's files run 06:00-08:00 EAT
    upload(
        settings,
        write_sample_stream(tmp_path / "s", baseline_rows=20, deltas=6, delta_rows=5, start=day - timedelta(hours=2)),
    )
    run_ingest(settings, apply=True)
    at = lambda h, m=0: day.replace(hour=h, minute=m, tzinfo=EAT)  # noqa: E731
    silent = report(settings, now=at(9, 30))
    assert [p for p in silent.problems if "arrived" in p] == [
        "no change file has arrived for 90 min of export hours (newest 2026-06-15 08:00 EAT; limit 60)"
    ]
    assert report(settings, now=at(8, 50)).healthy
    assert report(settings, now=at(21)).healthy, "after export hours silence is normal"
    next_morning = at(6, 30) + timedelta(days=1)
    assert report(settings, now=next_morning).healthy, "the night does not count"
    assert not report(settings, now=next_morning + timedelta(hours=1)).healthy
    assert report(settings, now=at(9, 30), export_hours="06:00-09:00").healthy


def test_pending_migrations_are_unhealthy(empty_db_url: str, s3_settings: Settings, tmp_path: Path) -> None:
    result = run_cli(["status", "--check"], job_env(empty_db_url, s3_settings), tmp_path)
    assert result.returncode == 1
    assert result.stdout.startswith(
        f"unhealthy: {len(MIGRATIONS)} migration(s) pending (first 01_tickets_schema.sql); run `fleettickets migrate`"
    )
    text = run_cli(["status"], job_env(empty_db_url, s3_settings), tmp_path)
    assert text.returncode == 0, "without --check the report is shown whatever the health"
    assert "no tickets table yet" in text.stdout and "nothing ingested yet" in text.stdout


def test_unreachable_bucket_is_a_reason_not_a_traceback(settings: Settings, tmp_path: Path) -> None:
    env = job_env(settings.database_url, settings, RUSTFS_ENDPOINT=f"http://127.0.0.1:{free_port()}")
    result = run_cli(["status", "--check"], env, tmp_path, timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stdout.startswith(
        f"unhealthy: bucket: cannot list s3://{settings.s3_bucket}/{PREFIX}changes/: the S3 endpoint did not answer"
    )


def test_unreachable_bucket_fails_the_ingest_run(settings: Settings, tmp_path: Path) -> None:
    env = job_env(settings.database_url, settings, RUSTFS_ENDPOINT=f"http://127.0.0.1:{free_port()}")
    result = run_cli(["ingest", "--apply"], env, tmp_path, timeout=90)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "Error: cannot list s3://" in result.stderr
    with psycopg.connect(settings.database_url) as conn:
        assert conn.execute("SELECT status FROM tickets.ingest_runs").fetchall() == [("failed",)]


def test_history_and_gazetteer_coverage(settings: Settings, tmp_path: Path) -> None:
    stream = recent_stream(tmp_path / "s")
    upload(settings, stream)
    run_ingest(settings, apply=True)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO tickets.geo_clusters (cluster_key, cluster, latitude, longitude, status) "
            "VALUES ('kayole', 'Kayole', -1.27, 36.91, 'ok'), ('umoja', 'Umoja', NULL, NULL, 'not_found')"
        )
        days, first, last = conn.execute(
            "SELECT count(*), min(snapshot_date), max(snapshot_date) FROM tickets.inc_daily_snapshot"
        ).fetchone()
        closures = conn.execute("SELECT count(*) FROM tickets.closure_events").fetchone()[0]
    facts = report(settings).facts
    assert days >= 1
    assert facts.history == HistoryFacts(
        installed=True, first_day=first, last_day=last, days=days, closure_events=closures
    )
    assert facts.dashboard_installed is True
    assert facts.gazetteer["clusters"] == GazetteerCount(rows=2, with_coordinates=1)
    out = status(settings, cwd=tmp_path)[1]
    assert f"history    {days} day(s), {first} to {last}; {closures} closure events" in out
    assert "clusters 1/2 with coordinates" in out


@pytest.mark.parametrize(
    "option, message",
    [
        (["--export-hours", "6-20"], "Error: EXPORT_HOURS must look like 06:00-20:00"),
        (["--max-pending-minutes", "0"], "Invalid value for '--max-pending-minutes'"),
    ],
)
def test_bad_thresholds_are_usage_errors(settings: Settings, tmp_path: Path, option: list[str], message: str) -> None:
    code, _, err = status(settings, "--check", *option, cwd=tmp_path)
    assert code == 2 and message in err


def test_thresholds_come_from_the_environment(settings: Settings, tmp_path: Path) -> None:
    env = job_env(settings.database_url, settings, STATUS_MAX_PENDING_MINUTES="7", EXPORT_HOURS="05:30-21:00")
    facts = json.loads(run_cli(["status", "--json"], env, tmp_path).stdout)
    assert facts["thresholds"]["max_pending_minutes"] == 7
    assert facts["thresholds"]["export_hours"] == "05:30-21:00 EAT"
