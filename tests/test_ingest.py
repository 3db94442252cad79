"""Ingestion end to end: a real S3 endpoint (moto server), real PostGIS, real processes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from fleettickets import clock, load
from fleettickets.clean import read_change_file
from fleettickets.db import lock_key
from fleettickets.errors import EXIT_LOCKED, FleetTicketsError
from fleettickets.ingest import run_ingest
from fleettickets.load import FileResult
from fleettickets.settings import Settings
from fleettickets_dev.faults import CRASH_EXIT_STATUS
from fleettickets_dev.sample_stream import write_sample_stream
from tests.stream_tools import (
    PREFIX,
    bucket_keys,
    db_state,
    expected_state,
    fingerprint,
    job_env,
    run_cli,
    upload,
)


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Baseline + 6 deltas carrying every hard case of the feed contract."""
    return write_sample_stream(
        tmp_path_factory.mktemp("stream"), baseline_rows=120, deltas=6, delta_rows=30, hard_cases=True
    )


def names(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def test_baseline_and_deltas_end_to_end(settings: Settings, stream: list[Path]) -> None:
    upload(settings, stream)
    (settings_keys_before := bucket_keys(settings))
    report = run_ingest(settings, apply=True)

    assert report.ok, report.problems
    assert [f.file_key for f in report.files] == [PREFIX + "changes/" + n for n in names(stream)]
    assert db_state(settings.database_url) == expected_state(stream)
    assert bucket_keys(settings) == sorted(k.replace("/changes/", "/processed/") for k in settings_keys_before)
    with psycopg.connect(settings.database_url) as conn:
        meta = conn.execute("SELECT metadata FROM tickets.import_meta WHERE dataset = 'inc'").fetchone()[0]
        ledger = conn.execute(
            "SELECT file_key, rows_rejected, alarms_dropped, sentinels_dropped, duplicates_in_file, "
            "archived_at IS NOT NULL FROM tickets.ingest_files ORDER BY file_ts"
        ).fetchall()
        run = conn.execute("SELECT status, files_applied, files_archived FROM tickets.ingest_runs").fetchall()
    assert meta["source_max_key"] == PREFIX + "changes/" + stream[-1].name
    assert meta["source_max_ts"] == "2026-06-15T08:00:00+03:00"
    assert meta["source_etag"] == hashlib.md5(stream[-1].read_bytes()).hexdigest()  # a single-part upload's ETag
    assert [r[0] for r in ledger] == [PREFIX + "changes/" + n for n in names(stream)]
    assert all(r[5] for r in ledger), "every file marked archived"
    assert sum(r[1] for r in ledger) == 1  # the blank ticket_id
    assert sum(r[2] for r in ledger) == 2  # two alarm rows
    assert sum(r[3] for r in ledger) == 1  # the sentinel
    assert sum(r[4] for r in ledger) == 1  # one ticket twice in a file
    assert run == [("ok", 7, 7)]


def test_rerun_is_a_noop_and_unchanged_rows_keep_ingested_at(
    settings: Settings, stream: list[Path], tmp_path: Path
) -> None:
    upload(settings, stream[:3])
    run_ingest(settings, apply=True)
    before = fingerprint(settings.database_url)
    again = run_ingest(settings, apply=True)
    assert again.files == [] and again.ok
    after = fingerprint(settings.database_url)
    assert after["inc"] == before["inc"] and after["files"] == before["files"]

    # A re-seed: the same content again under a newer name is "unchanged".
    reseed = tmp_path / "2026-06-15T09-00-00.csv"
    reseed.write_bytes(stream[0].read_bytes())
    upload(settings, [reseed])
    result = run_ingest(settings, apply=True)
    baseline_ids = set(expected_state([stream[0]]))
    touched_later = set(expected_state(stream[1:3]))
    assert result.files[0].unchanged == len(baseline_ids - touched_later)
    assert result.files[0].updated == len(baseline_ids & touched_later)
    with psycopg.connect(settings.database_url) as conn:
        kept = conn.execute(
            "SELECT count(*) FROM tickets.inc WHERE ingested_at < (SELECT committed_at FROM "
            "tickets.ingest_files WHERE file_key LIKE '%%09-00-00.csv') AND ticket_id = ANY(%s)",
            (sorted(baseline_ids - touched_later),),
        ).fetchone()[0]
    assert kept == len(baseline_ids - touched_later)


def test_dry_run_writes_nothing_and_predicts_the_apply(settings: Settings, stream: list[Path], tmp_path: Path) -> None:
    upload(settings, stream[:2])
    run_ingest(settings, apply=True)
    upload(settings, stream[2:])
    db_before, keys_before = fingerprint(settings.database_url), bucket_keys(settings)

    result = run_cli(["ingest"], job_env(settings.database_url, settings), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "(dry run: nothing written)" in result.stdout
    assert fingerprint(settings.database_url) == db_before
    assert bucket_keys(settings) == keys_before

    preview = run_ingest(settings, apply=False)
    applied = run_ingest(settings, apply=True)
    counts = lambda r: [(f.file_key, f.inserted, f.updated, f.unchanged, f.rejected) for f in r.files]  # noqa: E731
    assert counts(preview) == counts(applied)


def test_late_file_never_overwrites_a_newer_version(settings: Settings, stream: list[Path]) -> None:
    on_time = [p for i, p in enumerate(stream) if i != 2]
    upload(settings, on_time)
    run_ingest(settings, apply=True)
    upload(settings, [stream[2]])
    late = run_ingest(settings, apply=True)
    assert [f.late for f in late.files] == [True]
    assert late.files[0].stale > 0
    assert db_state(settings.database_url) == expected_state(stream)
    with psycopg.connect(settings.database_url) as conn:
        meta = conn.execute("SELECT metadata FROM tickets.import_meta").fetchone()[0]
    assert meta["source_max_key"].endswith(stream[-1].name), "a late file does not pull the watermark back"
    assert meta["source_etag"] == hashlib.md5(stream[-1].read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "crash_at",
    [
        "before-file:2",
        "mid-copy:1",
        "mid-copy:4",
        "before-commit:3",
        "after-commit:1",
        "after-commit:4",
        "before-archive:1",
        "before-archive:5",
    ],
)
def test_crash_at_any_step_then_resume_matches_an_uninterrupted_run(
    settings: Settings, stream: list[Path], tmp_path: Path, crash_at: str
) -> None:
    upload(settings, stream)
    env = job_env(settings.database_url, settings)
    crashed = run_cli(["ingest", "--apply"], {**env, "FLEETTICKETS_CRASH_AT": crash_at}, tmp_path)
    assert crashed.returncode == CRASH_EXIT_STATUS, crashed.stderr
    resumed = run_cli(["ingest", "--apply"], env, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert db_state(settings.database_url) == expected_state(stream)
    assert bucket_keys(settings) == sorted(PREFIX + "processed/" + n for n in names(stream))
    with psycopg.connect(settings.database_url) as conn:
        files = conn.execute("SELECT file_key, archived_at IS NOT NULL FROM tickets.ingest_files ORDER BY 1").fetchall()
    assert files == [(PREFIX + "changes/" + n, True) for n in names(stream)]


def index_definitions(database_url: str) -> list[tuple[str, str, bool]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid), i.indisvalid FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid IN ('tickets.inc'::regclass, 'tickets.inc_versions'::regclass) ORDER BY 1"
        ).fetchall()


def test_first_load_builds_the_indexes_after_the_rows(settings: Settings, stream: list[Path], tmp_path: Path) -> None:
    """Into empty tables the secondary indexes are dropped and rebuilt in the file's transaction, then analysed."""
    before = index_definitions(settings.database_url)
    assert len(before) >= 8
    upload(settings, stream)
    assert run_ingest(settings, apply=False).ok
    assert index_definitions(settings.database_url) == before
    env = job_env(settings.database_url, settings, FLEETTICKETS_CRASH_AT="before-commit:1")
    assert run_cli(["ingest", "--apply"], env, tmp_path).returncode == CRASH_EXIT_STATUS
    assert index_definitions(settings.database_url) == before
    assert run_ingest(settings, apply=True).ok
    assert index_definitions(settings.database_url) == before
    assert db_state(settings.database_url) == expected_state(stream)
    with psycopg.connect(settings.database_url) as conn:
        conn.execute("SET enable_seqscan = off")
        plan = conn.execute(
            "EXPLAIN SELECT ticket_id FROM tickets.inc WHERE closed_at > now() - interval '1 day'"
        ).fetchall()
    assert "Index Cond: (closed_at >" in str(plan)  # the rebuilt indexes serve queries
    with psycopg.connect(settings.database_url) as conn:  # by the load itself, not by autovacuum
        analysed = conn.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE schemaname = 'tickets' "
            "AND relname IN ('inc', 'inc_versions') AND last_analyze IS NOT NULL ORDER BY 1"
        ).fetchall()
    assert analysed == [("inc",), ("inc_versions",)]


def test_a_crashed_run_is_visible_as_unfinished(settings: Settings, stream: list[Path], tmp_path: Path) -> None:
    upload(settings, stream[:2])
    env = job_env(settings.database_url, settings, FLEETTICKETS_CRASH_AT="before-commit:1")
    assert run_cli(["ingest", "--apply"], env, tmp_path).returncode == CRASH_EXIT_STATUS
    with psycopg.connect(settings.database_url) as conn:
        assert conn.execute("SELECT status, finished_at FROM tickets.ingest_runs").fetchall() == [("running", None)]
        assert conn.execute("SELECT count(*) FROM tickets.inc").fetchone() == (0,)


def test_second_runner_waits_then_exits_naming_the_holder(
    settings: Settings, stream: list[Path], tmp_path: Path
) -> None:
    upload(settings, stream[:2])
    with psycopg.connect(settings.database_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (lock_key("ingest"),))
        holder.execute("INSERT INTO tickets.ingest_runs (run_id) VALUES ('live-run')")
        pid = holder.info.backend_pid
        before = fingerprint(settings.database_url)
        started = time.monotonic()
        result = run_cli(
            ["ingest", "--apply", "--lock-wait", "1.5"], job_env(settings.database_url, settings), tmp_path, timeout=30
        )
        waited = time.monotonic() - started
        assert result.returncode == EXIT_LOCKED
        assert 1.5 <= waited < 20
        error = result.stderr.strip().splitlines()[-1]
        assert error.startswith("Error: another fleettickets ingest run holds the lock (waited 1.5 s for it)")
        for fact in (
            f"backend pid {pid}",
            "run live-run, holding it since 20",
            "state idle since ",
            f"SELECT pg_terminate_backend({pid});",
        ):
            assert fact in error, error
        assert fingerprint(settings.database_url) == before
        assert bucket_keys(settings) == sorted(PREFIX + "changes/" + n for n in names(stream[:2]))


def test_a_lock_freed_within_the_wait_lets_the_run_proceed(
    settings: Settings, stream: list[Path], tmp_path: Path
) -> None:
    upload(settings, stream[:2])
    holder = psycopg.connect(settings.database_url, autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", (lock_key("ingest"),))
    run = subprocess.Popen(
        [sys.executable, "-m", "fleettickets", "ingest", "--apply", "--lock-wait", "60"],
        env=job_env(settings.database_url, settings),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert run.stderr is not None
    seen = [run.stderr.readline() for _ in range(1)]
    while seen[-1] and "waiting up to 60 s" not in seen[-1]:
        seen.append(run.stderr.readline())
    assert "waiting up to 60 s" in seen[-1], seen
    holder.close()  # as a dying run's session ends
    out, _ = run.communicate(timeout=120)
    assert run.returncode == 0
    assert "total: 2 files" in out
    assert db_state(settings.database_url) == expected_state(stream[:2])


def test_two_concurrent_runs_apply_each_file_once(settings: Settings, stream: list[Path], tmp_path: Path) -> None:
    upload(settings, stream)
    env = job_env(settings.database_url, settings)
    results: list = []
    threads = [
        threading.Thread(target=lambda: results.append(run_cli(["ingest", "--apply", "--json"], env, tmp_path)))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.returncode for r in results)
    assert codes in ([0, 0], [0, EXIT_LOCKED])
    applied = [f["file_key"] for r in results if r.returncode == 0 for f in json.loads(r.stdout)["files"]]
    assert sorted(applied) == sorted(PREFIX + "changes/" + n for n in names(stream))
    assert db_state(settings.database_url) == expected_state(stream)


def test_listing_skips_debris_and_never_reads_legacy_files(
    settings: Settings, stream: list[Path], tmp_path: Path
) -> None:
    from fleettickets.s3 import make_s3_client

    client = make_s3_client(settings)
    upload(settings, stream[:1])
    upload(settings, stream[1:2], folder="")  # legacy snapshot at the prefix root
    for key in [
        "changes/.keep",
        "changes/latest.json",
        "changes/old/2026-06-01T06-00-00.csv",
        "changes/2026-06-15T06-00.csv",
        "changes/2026-02-30T06-00-00.csv",
    ]:
        client.put_object(Bucket=settings.s3_bucket, Key=PREFIX + key, Body=b"x")
    result = run_cli(["ingest", "--apply"], job_env(settings.database_url, settings), tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"applied {PREFIX}changes/{stream[0].name}" in result.stdout
    for key in [
        ".keep",
        "latest.json",
        "old/2026-06-01T06-00-00.csv",
        "2026-06-15T06-00.csv",
        "2026-02-30T06-00-00.csv",
    ]:
        assert f"skipped {PREFIX}changes/{key}:" in result.stdout
    assert PREFIX + stream[1].name in bucket_keys(settings)
    assert db_state(settings.database_url) == expected_state(stream[:1])


def test_many_files_across_listing_pages(settings: Settings, tmp_path: Path) -> None:
    paths = write_sample_stream(tmp_path / "s", baseline_rows=20, deltas=30, delta_rows=3)
    upload(settings, paths)
    from fleettickets.s3 import make_s3_client
    from fleettickets.source import list_change_files

    listing = list_change_files(make_s3_client(settings), settings.s3_bucket, PREFIX + "changes/", page_size=4)
    assert [f.name for f in listing.files] == names(paths)
    report = run_ingest(settings, apply=True)
    assert len(report.files) == 31
    assert db_state(settings.database_url) == expected_state(paths)


def test_bad_file_stops_the_stream_and_says_where(settings: Settings, stream: list[Path], tmp_path: Path) -> None:
    bad = tmp_path / "2026-06-15T06-30-00.csv"
    bad.write_text("id,cluster\nWOT1,Kayole\n")
    upload(settings, [stream[0], bad, stream[2]])
    result = run_cli(["ingest", "--apply"], job_env(settings.database_url, settings), tmp_path)
    assert result.returncode == 1
    assert (
        f"Error: {PREFIX}changes/2026-06-15T06-30-00.csv, line 1: header has no ticket_id column (found: id, cluster)"
    ) in result.stderr, result.stderr
    assert "later files wait behind it" in result.stderr
    assert db_state(settings.database_url) == expected_state([stream[0]])
    keys = bucket_keys(settings)
    assert PREFIX + "processed/" + stream[0].name in keys, "files before the bad one are archived"
    assert PREFIX + "changes/" + stream[2].name in keys
    with psycopg.connect(settings.database_url) as conn:
        status, error = conn.execute("SELECT status, error FROM tickets.ingest_runs").fetchone()
    assert status == "failed" and "2026-06-15T06-30-00.csv" in error


def test_rejected_rows_are_reported_with_file_and_line(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "2026-06-15T06-00-00.csv"
    path.write_text("ticket_id,cluster\nWOT1,Kayole\n,Umoja\nWOT2,Pipeline\n")
    result = run_cli(["ingest", "--apply", "--inc-csv", str(path)], job_env(settings.database_url, settings), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "line 3: rejected: blank ticket_id" in result.stdout
    assert f"{PREFIX}changes/2026-06-15T06-00-00.csv, line 3: row rejected: blank ticket_id" in result.stderr
    assert sorted(db_state(settings.database_url)) == ["WOT1", "WOT2"]


def test_local_file_then_same_file_in_bucket_is_only_archived(
    settings: Settings, stream: list[Path], tmp_path: Path
) -> None:
    env = job_env(settings.database_url, settings)
    local = run_cli(["ingest", "--apply", "--inc-csv", str(stream[0])], env, tmp_path)
    assert local.returncode == 0, local.stderr
    upload(settings, stream[:1])
    bucket = run_cli(["ingest", "--apply", "--json"], env, tmp_path)
    summary = json.loads(bucket.stdout)
    assert summary["files"] == [] and summary["archived"] == [PREFIX + "changes/" + stream[0].name]


def test_replaced_object_under_an_applied_key_is_refused(
    settings: Settings, stream: list[Path], tmp_path: Path
) -> None:
    upload(settings, stream[:1])
    env = job_env(settings.database_url, settings)
    assert run_cli(["ingest", "--apply"], env, tmp_path).returncode == 0
    changed = tmp_path / stream[0].name
    changed.write_bytes(stream[1].read_bytes())
    upload(settings, [changed])
    before = fingerprint(settings.database_url)["inc"]
    result = run_cli(["ingest", "--apply"], env, tmp_path)
    assert result.returncode == 1
    assert "was ingested as ETag" in result.stdout + result.stderr
    assert fingerprint(settings.database_url)["inc"] == before
    assert PREFIX + "changes/" + stream[0].name in bucket_keys(settings)


def test_json_summary_and_nothing_new(settings: Settings, stream: list[Path], tmp_path: Path) -> None:
    env = job_env(settings.database_url, settings)
    empty = run_cli(["ingest", "--apply"], env, tmp_path)
    assert empty.returncode == 0 and empty.stdout.strip() == "nothing new to ingest"
    upload(settings, stream[:2])
    summary = json.loads(run_cli(["ingest", "--apply", "--json"], env, tmp_path).stdout)
    assert summary["ok"] is True and summary["applied"] is True
    assert summary["totals"]["inserted"] == len(expected_state(stream[:2]))
    assert [f["file_key"] for f in summary["files"]] == [PREFIX + "changes/" + n for n in names(stream[:2])]


def test_schema_behind_is_refused(empty_db_url: str, s3_settings: Settings, tmp_path: Path) -> None:
    result = run_cli(["ingest"], job_env(empty_db_url, s3_settings), tmp_path)
    assert result.returncode == 1
    assert "run `fleettickets migrate` first" in result.stderr


def test_library_refuses_unnamed_local_file(settings: Settings, tmp_path: Path) -> None:
    odd = tmp_path / "export.csv"
    odd.write_text("ticket_id\nWOT1\n")
    with pytest.raises(FleetTicketsError, match="must be named <YYYY-MM-DDTHH-MM-SS>.csv"):
        run_ingest(settings, apply=True, local_files=[odd])


def test_wide_files_and_odd_column_names_keep_every_column(settings: Settings, tmp_path: Path) -> None:
    odd = ['say "hi"', "x" * 80, "Ünïcode col", "with,comma"] + [f"extra_{i}" for i in range(60)]
    path = tmp_path / "2026-06-15T06-00-00.csv"
    import csv as csv_module

    with path.open("w", newline="") as handle:
        writer = csv_module.writer(handle)
        writer.writerow(["ticket_id", "region", *odd, "department"])
        writer.writerow(["WOT1", "Nairobi EAST", *[f"v{i}" for i in range(len(odd))], "noise"])
    run_ingest(settings, apply=True, local_files=[path])
    raw = db_state(settings.database_url)["WOT1"]
    assert raw == {"ticket_id": "WOT1", "region": "nairobi east", **{n: f"v{i}" for i, n in enumerate(odd)}}


def test_unreachable_bucket_is_one_clear_line(db_url: str, tmp_path: Path) -> None:
    from fleettickets_dev.localdb import free_port

    dead = Settings(
        s3_endpoint=f"http://127.0.0.1:{free_port()}",
        s3_access_key_id="AKIDEXAMPLE1",
        s3_secret_access_key="TopSecretValue",
    )
    result = run_cli(["ingest", "--apply"], job_env(db_url, dead), tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("Error: cannot list s3://tickets/automations/inc/changes/")
    assert "Traceback" not in result.stderr and "TopSecretValue" not in result.stderr
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT status FROM tickets.ingest_runs").fetchall() == [("failed",)]


def test_one_file_with_new_changed_identical_and_stale_tickets(settings: Settings, tmp_path: Path) -> None:
    """Each row of a delta takes exactly one path, and only new and changed rows make versions."""
    header = "ticket_id,raw_status,cluster,location_name,latitude,longitude\n"
    first = tmp_path / "2026-06-15T06-00-00.csv"
    first.write_text(
        header + "INC-1,Open,Nairobi,Site A,-1.29,36.82\n"
        "INC-2,Open,Nairobi,Site B,-1.30,36.80\n"
        "INC-3,Open,Mombasa,Site C,-4.05,39.66\n"
    )
    newer = tmp_path / "2026-06-15T08-00-00.csv"
    newer.write_text(header + "INC-3,Closed,Mombasa,Site C,-4.05,39.66\n")
    run_ingest(settings, apply=True, local_files=[first, newer])
    with psycopg.connect(settings.database_url) as conn:
        before = dict(conn.execute("SELECT ticket_id, ingested_at FROM tickets.inc").fetchall())

    # INC-1 changes, INC-2 is identical, INC-3 holds a newer version already, INC-4 is new.
    delta = tmp_path / "2026-06-15T07-00-00.csv"
    delta.write_text(
        header + "INC-1,Resolved,Nairobi,Site A,-1.29,36.82\n"
        "INC-2,Open,Nairobi,Site B,-1.30,36.80\n"
        "INC-3,Pending,Mombasa,Site C,-4.05,39.66\n"
        "INC-4,Open,Kisumu,Site D,-0.09,34.77\n"
    )
    result = run_ingest(settings, apply=True, local_files=[delta]).files[0]
    assert (result.inserted, result.updated, result.unchanged, result.stale) == (1, 1, 1, 1)
    assert result.versions == 3, "INC-1 and INC-4, and INC-3's late version"

    with psycopg.connect(settings.database_url) as conn:
        rows = {
            r[0]: r[1:]
            for r in conn.execute(
                "SELECT ticket_id, raw ->> 'raw_status', source_key, ingested_at, geom IS NOT NULL FROM tickets.inc"
            )
        }
        versions = conn.execute(
            "SELECT ticket_id, raw ->> 'raw_status' FROM tickets.inc_versions "
            "WHERE source_key LIKE '%%07-00-00.csv' ORDER BY ticket_id"
        ).fetchall()
    assert {t: r[0] for t, r in rows.items()} == {
        "INC-1": "RESOLVED",
        "INC-2": "OPEN",
        "INC-3": "CLOSED",
        "INC-4": "OPEN",
    }
    assert rows["INC-2"][1].endswith(delta.name), "an identical row takes the newer file's stamp"
    assert rows["INC-2"][2] == before["INC-2"], "and keeps its ingested_at"
    assert rows["INC-1"][2] > before["INC-1"]
    assert rows["INC-3"][1].endswith(newer.name), "a stale row does not replace a newer version"
    assert all(r[3] for r in rows.values()), "every ticket keeps or gets its point"
    assert versions == [("INC-1", "RESOLVED"), ("INC-3", "PENDING"), ("INC-4", "OPEN")]


def test_a_delta_settles_its_new_tickets_by_key_not_by_reading_every_ticket(
    settings: Settings, stream: list[Path]
) -> None:
    """Which winners are new is one primary-key probe each, whatever the planner guesses of the staged rows."""
    upload(settings, stream[:1])
    assert run_ingest(settings, apply=True).ok
    delta = stream[1]
    result = FileResult(file_key=delta.name, file_ts=clock.now(), etag="", size_bytes=0, late=False)
    with psycopg.connect(settings.database_url) as conn, delta.open("rb") as handle:
        rows = read_change_file(handle, delta.name)
        first = next(rows)
        columns = list(first.record)
        load._create_stage(conn, len(columns))
        load._copy_rows(conn, first, rows, len(columns))
        plan = "\n".join(
            r[0] for r in conn.execute(sql.SQL("EXPLAIN ") + load._statement(load.INCOMING_SQL, columns, result))
        )
        conn.rollback()
    assert "Seq Scan on inc" not in plan, plan
    assert "inc_pkey on inc" in plan, plan
