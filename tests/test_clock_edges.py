"""Every edge of the EAT day, run through the command line with the clock pinned.

EAT midnight is 21:00 UTC and UTC midnight is 03:00 EAT: a bug that takes a
UTC date, or the host's, shows at exactly one of these instants. Each case
pins the clock with FLEETTICKETS_NOW (as an operator would with --now) and
reads what the command printed, never the code under it.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from fleettickets import clock
from fleettickets.clock import EAT
from fleettickets.ingest import run_ingest
from fleettickets.s3 import make_s3_client
from fleettickets.settings import Settings
from tests.stream_tools import job_env, run_cli, upload

pytestmark = pytest.mark.clock

HEADER = "ticket_id,is_actionable,cluster,created_at_service,first_seen_at,closed_at\n"


@pytest.fixture
def read_settings(module_db_url: str, s3_settings: Settings) -> Settings:
    """For commands that only read: one database for the module."""
    return Settings(**{**s3_settings.__dict__, "database_url": module_db_url})


def eat(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=EAT)  # type: ignore[misc]


def change_file(folder: Path, stamp: datetime, *rows: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stamp.astimezone(EAT):%Y-%m-%dT%H-%M-%S}.csv"
    path.write_text(HEADER + "".join(row + "\n" for row in rows))
    return path


def window(settings: Settings, tmp_path: Path, now: datetime, name: str) -> dict[str, Any]:
    env = job_env(settings.database_url, settings, now=now)
    result = run_cli(["dashboard", "--window", name, "--max-features", "1", "--json"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["window"]


def days(payload_window: dict[str, Any]) -> tuple[str, str]:
    return payload_window["from"], payload_window["to"]


@pytest.mark.parametrize(
    "now, name, expected",
    [
        # EAT midnight: the day turns at 00:00:00 EAT (21:00 UTC), not before.
        (eat(2026, 6, 16, 23, 59, 59), "today", ("2026-06-16", "2026-06-16")),
        (eat(2026, 6, 17, 0, 0, 0), "today", ("2026-06-17", "2026-06-17")),
        (eat(2026, 6, 16, 23, 59, 59), "yesterday", ("2026-06-15", "2026-06-15")),
        (eat(2026, 6, 17, 0, 0, 0), "yesterday", ("2026-06-16", "2026-06-16")),
        # UTC midnight (03:00 EAT): nothing turns here.
        (eat(2026, 6, 17, 2, 59, 59), "today", ("2026-06-17", "2026-06-17")),
        (eat(2026, 6, 17, 3, 0, 0), "today", ("2026-06-17", "2026-06-17")),
        (eat(2026, 6, 17, 2, 59, 59), "yesterday", ("2026-06-16", "2026-06-16")),
        (eat(2026, 6, 17, 3, 0, 0), "last_7_days", ("2026-06-11", "2026-06-17")),
        # Month ends: the last minute of June is June, its first instant July.
        (eat(2026, 6, 30, 23, 59, 0), "this_month", ("2026-06-01", "2026-06-30")),
        (eat(2026, 7, 1, 0, 0, 0), "this_month", ("2026-07-01", "2026-07-01")),
        (eat(2026, 7, 1, 2, 59, 59), "this_month", ("2026-07-01", "2026-07-01")),
        (eat(2026, 12, 31, 23, 59, 59), "this_month", ("2026-12-01", "2026-12-31")),
        (eat(2027, 1, 1, 0, 0, 0), "last_30_days", ("2026-12-03", "2027-01-01")),
    ],
)
def test_dashboard_windows_turn_at_eat_midnight(
    read_settings: Settings, tmp_path: Path, now: datetime, name: str, expected: tuple[str, str]
) -> None:
    assert days(window(read_settings, tmp_path, now, name)) == expected


def test_now_option_and_variable_agree_and_bad_instants_are_usage_errors(
    read_settings: Settings, tmp_path: Path
) -> None:
    env = job_env(read_settings.database_url, read_settings)
    del env[clock.NOW_ENV]
    by_option = run_cli(
        ["--now", "2026-06-30T23:59:00", "dashboard", "--window", "this_month", "--json"], env, tmp_path
    )
    by_utc = run_cli(
        ["--now", "2026-06-30T20:59:00+00:00", "dashboard", "--window", "this_month", "--json"], env, tmp_path
    )
    assert by_option.returncode == by_utc.returncode == 0, by_option.stderr + by_utc.stderr
    assert json.loads(by_option.stdout)["window"] == json.loads(by_utc.stdout)["window"]
    assert days(json.loads(by_option.stdout)["window"]) == ("2026-06-01", "2026-06-30")

    bad = run_cli(["status"], {**env, clock.NOW_ENV: "yesterday"}, tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith(
        "Error: --now (FLEETTICKETS_NOW) must be an ISO 8601"
    )


# --- status --check: silence counts only inside export hours (06:00-20:00 EAT) -----


def check(settings: Settings, tmp_path: Path, now: datetime, *options: str) -> tuple[int, str]:
    env = job_env(settings.database_url, settings, now=now)
    result = run_cli(["status", "--check", *options], env, tmp_path)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, result.stdout.strip()


@pytest.fixture
def evening_stream(settings: Settings, tmp_path: Path) -> datetime:
    """One file at 18:58 EAT on 2026-06-16, applied: the exporter's last of the day."""
    stamp = eat(2026, 6, 16, 18, 58)
    path = change_file(tmp_path / "s", stamp, "CE-1,true,Kayole,2026-06-16 08:00:00,2026-06-16 08:00:00,")
    assert run_ingest(settings, apply=True, local_files=[path], now=stamp).ok
    return stamp


@pytest.mark.parametrize(
    "now, silence",
    [
        (eat(2026, 6, 16, 19, 58), None),  # 60 min: at the limit, not over it
        (eat(2026, 6, 16, 19, 59), 61),
        (eat(2026, 6, 16, 20, 0), None),  # export hours end at 20:00: silence stops counting
        (eat(2026, 6, 16, 23, 59, 59), None),
        (eat(2026, 6, 17, 0, 0), None),
        (eat(2026, 6, 17, 3, 0), None),  # UTC midnight
        (eat(2026, 6, 17, 5, 59), None),
        (eat(2026, 6, 17, 6, 0), None),  # the window opens: 0 min of silence so far
        (eat(2026, 6, 17, 7, 0), None),  # 60 min of export hours: not over the limit
        (eat(2026, 6, 17, 7, 1), 61),
    ],
)
def test_silence_edges(
    settings: Settings, tmp_path: Path, evening_stream: datetime, now: datetime, silence: int | None
) -> None:
    code, line = check(settings, tmp_path, now)
    if silence is None:
        assert (code, line.split(":")[0]) == (0, "healthy"), line
    else:
        assert (code, line) == (
            1,
            f"unhealthy: no change file has arrived for {silence} min of export "
            "hours (newest 2026-06-16 18:58 EAT; limit 60)",
        )


def test_a_file_at_0559_and_a_check_at_0600(settings: Settings, tmp_path: Path) -> None:
    stamp = eat(2026, 6, 17, 5, 59)
    path = change_file(tmp_path / "s", stamp, "CE-2,true,Umoja,2026-06-17 05:00:00,2026-06-17 05:00:00,")
    assert run_ingest(settings, apply=True, local_files=[path], now=stamp).ok
    assert check(settings, tmp_path, eat(2026, 6, 17, 6, 0))[0] == 0
    assert check(settings, tmp_path, eat(2026, 6, 17, 7, 0))[0] == 0
    code, line = check(settings, tmp_path, eat(2026, 6, 17, 7, 1))
    assert code == 1 and "61 min of export hours (newest 2026-06-17 05:59 EAT; limit 60)" in line
    # Other export hours move both edges with them.
    assert check(settings, tmp_path, eat(2026, 6, 17, 7, 1), "--export-hours", "07:00-20:00")[0] == 0
    assert check(settings, tmp_path, eat(2026, 6, 17, 8, 1), "--export-hours", "07:00-20:00")[0] == 1


def test_pending_limit_edge(settings: Settings, tmp_path: Path) -> None:
    """A file waits from when it landed, by the bucket's clock: 45 min is the limit, 46 is over it."""
    path = change_file(tmp_path / "s", eat(2026, 6, 17, 9, 0), "CE-3,true,Kayole,2026-06-17 08:00:00,,")
    upload(settings, [path])
    head = make_s3_client(settings).head_object(
        Bucket=settings.s3_bucket, Key=f"{settings.inc_prefix}changes/{path.name}"
    )
    landed = head["LastModified"].replace(microsecond=0)
    quiet = ("--max-silence-minutes", "100000")  # only the pending rule is under test here
    assert check(settings, tmp_path, landed + timedelta(minutes=45), *quiet)[0] == 0
    code, line = check(settings, tmp_path, landed + timedelta(minutes=46), *quiet)
    assert (
        code == 1
        and f"1 file(s) waiting in changes/, oldest {settings.inc_prefix}changes/{path.name} for 46 min (limit 45)"
        in line
    )


# --- one run, one now --------------------------------------------------------------


def snapshot_days(url: str) -> list[tuple[date, datetime]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT snapshot_date, as_of FROM tickets.inc_daily_snapshot ORDER BY snapshot_date"
        ).fetchall()


def test_a_run_that_starts_before_midnight_writes_the_day_it_started(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clock ticks 30 s on every read: a run that read it twice would capture 17 June."""
    start = eat(2026, 6, 16, 23, 59, 50)
    readings: list[datetime] = []

    def ticking() -> datetime:
        readings.append(start + timedelta(seconds=30 * len(readings)))
        return readings[-1]

    monkeypatch.setattr(clock, "now", ticking)
    path = change_file(
        tmp_path / "s",
        eat(2026, 6, 16, 23, 40),
        "CE-4,true,Kayole,2026-06-16 10:00:00,2026-06-16 10:00:00,",
        "CE-5,false,Umoja,2026-06-15 10:00:00,2026-06-15 10:00:00,2026-06-16 23:30:00",
    )
    report = run_ingest(settings, apply=True, local_files=[path])
    assert report.ok and len(readings) == 1
    assert snapshot_days(settings.database_url) == [(date(2026, 6, 16), start)]

    # The next run, after midnight, with nothing new: it closes 16 June and opens 17 June.
    after = eat(2026, 6, 17, 0, 20)
    monkeypatch.setattr(clock, "now", lambda: after)
    assert run_ingest(settings, apply=True).ok
    assert snapshot_days(settings.database_url) == [
        (date(2026, 6, 16), eat(2026, 6, 17, 0, 0)),
        (date(2026, 6, 17), after),
    ]


def test_the_cli_run_captures_at_the_pinned_instant(settings: Settings, tmp_path: Path) -> None:
    """Through the scheduled command: 02:59:59 EAT is still 17 June in EAT (16 June in UTC)."""
    path = change_file(tmp_path / "s", eat(2026, 6, 17, 2, 30), "CE-6,true,Kayole,2026-06-17 01:00:00,,")
    upload(settings, [path])
    for now, expected in (
        (eat(2026, 6, 17, 2, 59, 59), date(2026, 6, 17)),
        (eat(2026, 6, 17, 3, 0), date(2026, 6, 17)),
    ):
        result = run_cli(["ingest", "--apply"], job_env(settings.database_url, settings, now=now), tmp_path)
        assert result.returncode == 0, result.stderr
        assert snapshot_days(settings.database_url) == [(expected, now)]
