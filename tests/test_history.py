"""History end to end: versions, closures and daily rows against an independent Python model."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from fleettickets import clock, history
from fleettickets.ingest import run_ingest
from fleettickets.settings import Settings
from fleettickets_dev.sample_stream import write_sample_stream
from tests import history_model as model
from tests.stream_tools import PREFIX, bucket_keys, expected_state, fingerprint, job_env, run_cli, upload

SNAPSHOT_SQL = (
    "SELECT snapshot_date, as_of, open_total, open_breached, open_on_first_seen_clock, opened, closed_today, "
    "open_by_cluster, breached_by_cluster FROM tickets.inc_daily_snapshot ORDER BY snapshot_date"
)
COLUMNS = (
    "snapshot_date",
    "as_of",
    "open_total",
    "open_breached",
    "open_on_first_seen_clock",
    "opened",
    "closed_today",
    "open_by_cluster",
    "breached_by_cluster",
)


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Six-hourly files over five EAT days (one lands at 00:00), ending two days ago.

    Every hard case of the feed contract is planted, and the files cross
    midnight so day boundaries are exercised; starting a week back leaves
    empty days before today.
    """
    today = clock.now().astimezone(model.EAT).replace(tzinfo=None).date()
    start = datetime.combine(today - timedelta(days=7), datetime.min.time()) + timedelta(hours=6)
    return write_sample_stream(
        tmp_path_factory.mktemp("history"),
        baseline_rows=120,
        deltas=18,
        delta_rows=30,
        start=start,
        interval_minutes=360,
        hard_cases=True,
    )


def snapshot_rows(url: str) -> list[dict[str, Any]]:
    with psycopg.connect(url) as conn:
        return [dict(zip(COLUMNS, row, strict=True)) for row in conn.execute(SNAPSHOT_SQL).fetchall()]


def closure_rows(url: str) -> list[model.Closure]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT ticket_id, observed_at, closed_at, source_key, first_observation, mttr_hours "
            "FROM tickets.closure_events ORDER BY ticket_id, observed_at"
        ).fetchall()
    return [
        model.Closure(t, o, c, key.rsplit("/", 1)[-1], first, None if m is None else f"{m:.2f}")
        for t, o, c, key, first, m in rows
    ]


def today_as_of(rows: list[dict[str, Any]]) -> datetime:
    return max(row["as_of"] for row in rows)


def version_keys(url: str) -> list[tuple[str, datetime]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT ticket_id, valid_from FROM tickets.inc_versions ORDER BY 1, 2").fetchall()


def model_version_keys(paths: list[Path]) -> list[tuple[str, datetime]]:
    return sorted((t, at) for t, seq in model.versions(paths).items() for at, _ in seq)


def test_model_covers_reopen_and_close_again(stream: list[Path]) -> None:
    events = model.closures(model.versions(stream))
    per_ticket: dict[str, int] = {}
    for event in events:
        per_ticket[event.ticket_id] = per_ticket.get(event.ticket_id, 0) + 1
    assert max(per_ticket.values()) >= 2, "the sample stream must close a reopened ticket again"
    days = {model.file_time(p).date() for p in stream}
    assert len(days) >= 5 and any(model.file_time(p).hour == 0 for p in stream)


def test_live_capture_day_by_day_matches_the_model_and_a_rebuild(settings: Settings, stream: list[Path]) -> None:
    # One ingest run per file, as the 20-minute job would see them arrive.
    for path in stream:
        upload(settings, [path])
        report = run_ingest(settings, apply=True)
        assert report.ok and report.history is not None
    live = snapshot_rows(settings.database_url)
    now = today_as_of(live)
    expected = model.daily_rows(stream, now)
    assert [r["snapshot_date"] for r in live] == [r["snapshot_date"] for r in expected]
    for got, want in zip(live, expected, strict=True):
        assert got == want, got["snapshot_date"]
    assert sum(r["closed_today"] for r in live) == len(model.closures(model.versions(stream)))

    live_closures = closure_rows(settings.database_url)
    assert live_closures == model.closures(model.versions(stream))
    assert any(a.ticket_id == b.ticket_id for a, b in zip(live_closures, live_closures[1:], strict=False))

    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM tickets.inc_daily_snapshot")
        conn.execute("DELETE FROM tickets.closure_events")
        rebuilt = history.rebuild(conn, now=now)
    assert rebuilt.days_refreshed == len(live)
    assert snapshot_rows(settings.database_url) == live
    assert closure_rows(settings.database_url) == live_closures


def test_a_day_captured_midway_is_finished_by_the_next_days_capture(settings: Settings, stream: list[Path]) -> None:
    upload(settings, stream)
    run_ingest(settings, apply=True)
    midday = datetime.combine(model.file_time(stream[6]).date(), datetime.min.time(), model.EAT) + timedelta(hours=13)
    next_day = midday + timedelta(days=1, hours=-4)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        history.rebuild(conn, now=midday)
        assert snapshot_rows(settings.database_url)[-1]["as_of"] == midday
        second = history.capture(conn, now=next_day)  # no new versions: only the clock moved
        assert (second.versions_seen, second.days_refreshed) == (0, 2)
        live = snapshot_rows(settings.database_url)
        history.rebuild(conn, now=next_day)
    assert snapshot_rows(settings.database_url) == live == model.daily_rows(stream, next_day)


def test_versions_only_for_changed_tickets(settings: Settings, stream: list[Path], tmp_path: Path) -> None:
    upload(settings, stream[:6])
    report = run_ingest(settings, apply=True)
    assert [f.versions for f in report.files] == [f.inserted + f.updated for f in report.files]
    # A re-seed: the baseline's content again under a newer name.
    reseed = tmp_path / (model.file_time(stream[5]) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H-%M-%S.csv")
    reseed.write_bytes(stream[0].read_bytes())
    upload(settings, [reseed])
    again = run_ingest(settings, apply=True)
    changed_since = set(expected_state(stream[1:6]))
    assert again.files[0].versions == again.files[0].updated == len(set(expected_state(stream[:1])) & changed_since)
    assert version_keys(settings.database_url) == model_version_keys([*stream[:6], reseed])
    with psycopg.connect(settings.database_url) as conn:
        same_tx = conn.execute(
            "SELECT count(*) FROM tickets.inc_versions v JOIN tickets.inc t USING (ticket_id) "
            "WHERE v.valid_from = t.source_file_ts AND v.raw IS DISTINCT FROM t.raw"
        ).fetchone()[0]
    assert same_tx == 0


def test_late_file_versions_make_point_in_time_exact(settings: Settings, stream: list[Path]) -> None:
    late = stream[4]
    upload(settings, [p for p in stream if p != late])
    run_ingest(settings, apply=True)
    upload(settings, [late])
    report = run_ingest(settings, apply=True)
    assert report.files[0].late and report.files[0].stale > 0
    assert report.files[0].versions > report.files[0].inserted + report.files[0].updated

    with psycopg.connect(settings.database_url) as conn:
        for path in stream:
            at = model.file_time(path)
            got = dict(conn.execute("SELECT ticket_id, raw FROM tickets.inc_as_of(%s)", (at,)).fetchall())
            assert got == expected_state([p for p in stream if model.file_time(p) <= at]), path.name
        ticket = next(iter(model.versions([late])))
        timeline = conn.execute("SELECT valid_from, raw FROM tickets.inc_timeline(%s)", (ticket,)).fetchall()
    assert model.file_time(late) in [at for at, _ in timeline]
    assert timeline[-1][1] == expected_state(stream)[ticket]

    rows = snapshot_rows(settings.database_url)
    assert rows == model.daily_rows(stream, today_as_of(rows))
    assert closure_rows(settings.database_url) == model.closures(model.versions(stream))


def test_rebuild_replays_processed_files_read_only(settings: Settings, stream: list[Path], tmp_path: Path) -> None:
    # An earlier deployment archived files 0..5; this database starts at a
    # re-seed holding the full state, then the remaining deltas.
    split = 6
    reseed = tmp_path / (model.file_time(stream[split - 1]) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H-%M-%S.csv")
    _write_state(reseed, expected_state(stream[:split]))
    upload(settings, stream[:split], folder="processed/")
    upload(settings, [reseed, *stream[split:]])
    run_ingest(settings, apply=True)
    env = job_env(settings.database_url, settings)
    db_before, keys_before = fingerprint(settings.database_url), bucket_keys(settings)

    dry = run_cli(["history", "rebuild"], env, tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count("would replay ") == split and "(dry run: nothing written)" in dry.stdout
    assert fingerprint(settings.database_url) == db_before

    applied = run_cli(["history", "rebuild", "--apply", "--json"], env, tmp_path)
    assert applied.returncode == 0, applied.stderr
    summary = json.loads(applied.stdout)
    assert [f["file_key"] for f in summary["replayed"]] == [PREFIX + "processed/" + p.name for p in stream[:split]]
    assert bucket_keys(settings) == keys_before
    everything = [*stream, reseed]
    with psycopg.connect(settings.database_url) as conn:
        for path in everything:
            at = model.file_time(path)
            got = dict(conn.execute("SELECT ticket_id, raw FROM tickets.inc_as_of(%s)", (at,)).fetchall())
            assert got == expected_state([p for p in everything if model.file_time(p) <= at]), path.name
    rows = snapshot_rows(settings.database_url)
    assert rows[0]["snapshot_date"] == model.file_time(stream[0]).date()
    assert rows == model.daily_rows(everything, today_as_of(rows))
    assert closure_rows(settings.database_url) == model.closures(model.versions(everything))

    again = json.loads(run_cli(["history", "rebuild", "--apply", "--json"], env, tmp_path).stdout)
    assert again["replayed"] == [] and again["versions_total"] == summary["versions_total"]


def test_capture_history_command_and_as_of(settings: Settings, stream: list[Path], tmp_path: Path) -> None:
    env = job_env(settings.database_url, settings)
    upload(settings, stream[:3])
    assert run_cli(["ingest", "--apply"], env, tmp_path).returncode == 0
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM tickets.inc_daily_snapshot")
        conn.execute("UPDATE tickets.history_state SET captured_version_id = 0, captured_now = NULL")
    dry = run_cli(["capture-history"], env, tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "(dry run: nothing written)" in dry.stdout
    assert snapshot_rows(settings.database_url) == []
    applied = run_cli(["capture-history", "--apply", "--json"], env, tmp_path)
    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout)["days_refreshed"] == len(snapshot_rows(settings.database_url)) > 0

    ticket = next(iter(model.file_records(stream[1])))
    at = model.file_time(stream[1]).strftime("%Y-%m-%d %H:%M:%S")
    shown = run_cli(["history", "as-of", at, "--ticket", ticket], env, tmp_path)
    assert shown.returncode == 0, shown.stderr
    row = json.loads(shown.stdout)
    assert row["raw"] == expected_state(stream[:2])[ticket]
    assert row["source_key"] == PREFIX + "changes/" + stream[1].name


def _write_state(path: Path, state: dict[str, dict[str, Any]]) -> None:
    import csv

    columns = sorted({c for record in state.values() for c in record})
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows({c: record.get(c) or "" for c in columns} for record in state.values())


def test_breach_clock_straddles_48_hours_and_falls_back_to_first_seen(settings: Settings, tmp_path: Path) -> None:
    """Hand-written files, since generated content always trails by more than 48 h."""
    day = clock.now().astimezone(model.EAT).date() - timedelta(days=3)

    def at(d: int, h: int, m: int = 0) -> str:
        moment = datetime.combine(day + timedelta(days=d), datetime.min.time()) + timedelta(hours=h, minutes=m)
        return moment.strftime("%Y-%m-%d %H:%M:%S")

    almost = (clock.now().astimezone(model.EAT) - timedelta(hours=47, minutes=30)).strftime("%Y-%m-%d %H:%M:%S")
    header = "ticket_id,is_actionable,cluster,created_at_service,first_seen_at,closed_at\n"
    files = {
        f"{day}T10-00-00.csv": [
            f"WOT1,true,Kayole,{at(-2, 23, 59)},{at(-2, 23, 59)},",  # 48 h + 1 min at the day's end
            f"WOT2,true,Kayole,{at(-1, 0, 1)},{at(-1, 0, 1)},",  # 47 h 59 min: not yet
            f"WOT3,TRUE,,,{at(-3, 8)},",  # no service clock: first_seen_at
            f"WOT4,1,Pipeline,N/A,{at(0, 9)},",
        ],
        f"{day + timedelta(days=1)}T00-00-00.csv": [f"WOT4,false,Pipeline,N/A,{at(0, 9)},{at(0, 23)}"],
        f"{day + timedelta(days=1)}T12-00-00.csv": [f"WOT2,0,Kayole,{at(-1, 0, 1)},{at(-1, 0, 1)},{at(1, 11)}"],
        f"{day + timedelta(days=2)}T07-00-00.csv": [
            f"WOT2,true,Kayole,{at(-1, 0, 1)},{at(-1, 0, 1)},",
            f"WOT5,true,Umoja,{almost},{almost},",  # breaches half an hour after now
        ],
    }
    paths = []
    for name, lines in files.items():
        paths.append(tmp_path / name)
        paths[-1].write_text(header + "\n".join(lines) + "\n")
    for path in paths:
        assert run_ingest(settings, apply=True, local_files=[path]).ok
    rows = snapshot_rows(settings.database_url)
    assert rows == model.daily_rows(paths, today_as_of(rows))
    assert [(r["open_total"], r["open_breached"], r["open_on_first_seen_clock"]) for r in rows[:3]] == [
        (4, 2, 2),
        (2, 2, 1),
        (4, 3, 1),
    ]
    assert [(r["opened"], r["closed_today"]) for r in rows[:3]] == [(4, 0), (0, 2), (1, 0)]
    assert (rows[-1]["open_total"], rows[-1]["open_breached"]) == (4, 3)


def function_calls(conn: psycopg.Connection, signature: str) -> int:
    """Calls of one function so far: flushed statistics plus this backend's pending ones."""
    row = conn.execute(
        "SELECT coalesce(pg_stat_get_function_calls(f), 0) + coalesce(pg_stat_get_xact_function_calls(f), 0) "
        "FROM (SELECT %s::regprocedure::oid) AS p(f)",
        (signature,),
    ).fetchone()
    assert row is not None
    return int(row[0])


CARRY = "tickets.carry_snapshots(bigint, timestamptz, date, date, timestamptz)"


def test_same_day_captures_carry_the_row_forward_exactly(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Captures within one EAT day take the incremental path and match the model and a full count.

    Ingest runs capture at the run's clock; here every capture is made at a
    chosen instant on its own, so the runs' own capture is switched off.
    """
    monkeypatch.setattr("fleettickets.ingest.capture", lambda conn, now: None)
    day = clock.now().astimezone(model.EAT).date() - timedelta(days=10)

    def at(d: int, h: int, m: int = 0) -> datetime:
        return datetime.combine(day + timedelta(days=d), datetime.min.time(), model.EAT) + timedelta(hours=h, minutes=m)

    text = lambda moment: moment.strftime("%Y-%m-%d %H:%M:%S")  # noqa: E731
    header = "ticket_id,is_actionable,cluster,created_at_service,first_seen_at,closed_at\n"
    files = {
        at(0, 6): [
            f"SD-A,true,Kayole,{text(at(-2, 7, 15))},{text(at(-2, 7, 15))},",  # 48 h run out at 07:15
            f"SD-B,true,Kayole,{text(at(-1, 10))},{text(at(-1, 10))},",
            f"SD-C,true,Pipeline,,{text(at(-3, 6))},",  # first-seen clock, long breached
            f"SD-E,false,Umoja,{text(at(-1, 1))},{text(at(-1, 1))},{text(at(0, 5))}",
            f"SD-G,true,,{text(at(-2, 12))},{text(at(-2, 12))},",  # blank cluster, runs out at 12:00
        ],
        at(0, 7, 10): [
            f"SD-B,false,Kayole,{text(at(-1, 10))},{text(at(-1, 10))},{text(at(0, 7, 5))}",
            f"SD-H,true,Umoja,{text(at(0, 7))},{text(at(0, 7))},",  # opened today
        ],
        at(0, 7, 20): [  # stamped before the 07:30 capture, ingested after it
            f"SD-E,true,Umoja,{text(at(-1, 1))},{text(at(-1, 1))},",  # reopened
            f"SD-C,true,Kayole,,{text(at(-3, 6))},",  # moved to another cluster
        ],
        at(0, 11): [
            f"SD-A,false,Kayole,{text(at(-2, 7, 15))},{text(at(-2, 7, 15))},{text(at(0, 10))}",
            f"SD-B,true,Kayole,{text(at(-1, 10))},{text(at(-1, 10))},",  # reopened
            f"SD-J,true,Kayole,,{text(at(0, 10, 30))},",
        ],
    }
    paths = []
    for stamp, lines in files.items():
        paths.append(tmp_path / f"{stamp.strftime('%Y-%m-%dT%H-%M-%S')}.csv")
        paths[-1].write_text(header + "\n".join(lines) + "\n")
    # (files ingested before the capture, capture instant, expect the incremental path)
    steps = [
        (1, at(0, 7), False),
        (2, at(0, 7, 30), True),
        (3, at(0, 9), True),
        (4, at(0, 13), True),
        (4, at(0, 13), True),
        (4, at(0, 23, 59) + timedelta(seconds=59), True),
        (4, at(1, 8), False),
    ]
    ingested = 0
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("SET track_functions = 'all'")
        for upto, instant, incremental in steps:
            for path in paths[ingested:upto]:
                assert run_ingest(settings, apply=True, local_files=[path]).ok
            ingested = upto
            with conn.transaction():
                calls_before = function_calls(conn, CARRY)
                history.capture(conn, now=instant)
                calls = function_calls(conn, CARRY) - calls_before
                full = conn.execute(
                    "SELECT snapshot_date, as_of, open_total, open_breached, open_on_first_seen_clock, opened, "
                    "closed_today, open_by_cluster, breached_by_cluster "
                    "FROM tickets.compute_daily_snapshots(%s, %s, %s)",
                    (instant.date(), instant.date(), instant),
                ).fetchall()
            assert (calls > 0) == incremental, instant
            rows = snapshot_rows(settings.database_url)
            assert rows[-1] == model.daily_rows(paths[:upto], instant)[-1], instant
            assert [tuple(rows[-1].values())] == full, instant
    final = snapshot_rows(settings.database_url)
    assert [(r["open_total"], r["open_breached"], r["opened"], r["closed_today"]) for r in final] == [
        (6, 2, 7, 3),
        (6, 3, 0, 0),
    ]


def test_files_stamped_weeks_back_carry_the_past_days_exactly(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deltas stamped weeks before the capture, a late one, and one older than the baseline.

    Each capture must carry the finished past days by the changed tickets alone,
    and every row must equal a full recompute over the same days, the model,
    and finally a rebuild.
    """
    monkeypatch.setattr("fleettickets.ingest.capture", lambda conn, now: None)
    now = clock.now()
    start = datetime.combine(now.astimezone(model.EAT).date() - timedelta(days=60), datetime.min.time())
    files = write_sample_stream(
        tmp_path / "stream",
        baseline_rows=150,
        deltas=6,
        delta_rows=40,
        start=start + timedelta(hours=6),
        interval_minutes=7 * 24 * 60 + 130,
        hard_cases=True,
    )
    older = tmp_path / (model.file_time(files[0]) - timedelta(days=3, hours=5)).strftime("%Y-%m-%dT%H-%M-%S.csv")
    older.write_bytes(files[1].read_bytes())
    # (files ingested before the capture, capture instant, expect past days carried)
    steps = [
        ([files[0]], now, False),
        ([files[1], files[2]], now + timedelta(hours=1), True),
        ([files[4], files[5]], now + timedelta(hours=2), True),
        ([files[3]], now + timedelta(days=1, hours=-1), True),  # late, and a new day
        ([older], now + timedelta(days=1), True),  # before the baseline: days with no row yet
        ([files[6]], now + timedelta(days=1), True),
    ]
    seen: list[Path] = []
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("SET track_functions = 'all'")
        for batch, instant, carried in steps:
            for path in batch:
                assert run_ingest(settings, apply=True, local_files=[path]).ok
            seen += batch
            with conn.transaction():
                calls = function_calls(conn, CARRY)
                history.capture(conn, now=instant)
                calls = function_calls(conn, CARRY) - calls
                full = conn.execute(
                    f"{SNAPSHOT_SQL.split(' FROM ')[0]} FROM tickets.compute_daily_snapshots(%s, %s, %s)",
                    (model.file_time(older).date(), instant.astimezone(model.EAT).date(), instant),
                ).fetchall()
            assert (calls > 0) == carried, instant
            rows = snapshot_rows(settings.database_url)
            assert [tuple(r.values()) for r in rows] == full, instant
            assert rows == model.daily_rows(seen, instant), instant
        assert closure_rows(settings.database_url) == model.closures(model.versions(seen))
        live = snapshot_rows(settings.database_url)
        history.rebuild(conn, now=steps[-1][1])
    assert snapshot_rows(settings.database_url) == live
    assert live[0]["snapshot_date"] == model.file_time(older).date()
    assert sum(r["opened"] for r in live) == len(model.versions(seen))


EVENT_SQL = (
    "SELECT ticket_id, observed_at, closed_at, source_key, first_observation, owner, assigned_team, cluster, "
    "region, mttr_hours, sla_status FROM tickets.closure_events ORDER BY ticket_id, observed_at"
)
FIRST_LOAD = "tickets.first_load_snapshots(timestamptz, timestamptz)"


def test_a_first_load_is_captured_in_one_pass_with_the_general_answers(
    settings: Settings, stream: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("fleettickets.ingest.capture", lambda conn, now: None)
    now = clock.now()
    assert run_ingest(settings, apply=True, local_files=[stream[0]]).ok
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("SET track_functions = 'all'")
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'tickets' "
            "AND tablename = 'closure_events' ORDER BY 1"
        ).fetchall()
        assert len(indexes) == 3
        with conn.transaction():
            calls = function_calls(conn, FIRST_LOAD)
            captured = history.capture(conn, now=now)
            assert function_calls(conn, FIRST_LOAD) > calls
        rows, events = snapshot_rows(settings.database_url), conn.execute(EVENT_SQL).fetchall()
        # Built after the rows, every index of the table is back as it was.
        assert (
            conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'tickets' "
                "AND tablename = 'closure_events' ORDER BY 1"
            ).fetchall()
            == indexes
        )
        assert conn.execute(
            "SELECT contype FROM pg_constraint WHERE conrelid = 'tickets.closure_events'::regclass"
        ).fetchall() == [("p",)]
        # The general path on the same versions: every closure and every row alike.
        general = conn.execute(
            f"{SNAPSHOT_SQL.split(' FROM ')[0]} FROM tickets.compute_daily_snapshots(%s, %s, %s)",
            (rows[0]["snapshot_date"], now.astimezone(model.EAT).date(), now),
        ).fetchall()
        conn.execute("DELETE FROM tickets.closure_events")
        conn.execute("SELECT tickets.derive_closures(0, (SELECT max(version_id) FROM tickets.inc_versions))")
        assert conn.execute(EVENT_SQL).fetchall() == events
    assert [tuple(r.values()) for r in rows] == general
    assert rows == model.daily_rows(stream[:1], now)
    assert captured.closures_added == len(events) == len(model.closures(model.versions(stream[:1]))) > 0
    assert rows[0]["opened"] == len(model.versions(stream[:1]))

    # A second stamp is not a first load: the rebuild takes the general path, same answers as the model.
    assert run_ingest(settings, apply=True, local_files=[stream[1]]).ok
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("SET track_functions = 'all'")
        with conn.transaction():
            calls = function_calls(conn, FIRST_LOAD)
            history.rebuild(conn, now=now)
            assert function_calls(conn, FIRST_LOAD) == calls
    assert snapshot_rows(settings.database_url) == model.daily_rows(stream[:2], now)
