"""Ingestion benchmark: a 1,000,000-row baseline and a 20,000-row delta against the COPY floor.

Usage: uv run python bench/ingest_bench.py [--rows N] [--delta-rows N] [--days-back N]

It starts (or reuses, with BENCH_DATABASE_URL) a PostgreSQL server, creates a
fresh database with every migration, writes the sample CSVs, and prints:
- the floor on the baseline CSV, measured in the same run: COPY into an
  unlogged staging table of text columns, then one INSERT ... SELECT of
  ticket_id and the row as jsonb into a plain table with only a primary key;
- the baseline ingest's wall time, rows/s, peak RSS (the CLI in a child
  process) and ratio ingest / floor, split into read + clean + COPY, merge, and
  the rest (the first history capture, process start);
- the delta ingest the same way: its file is stamped --days-back days ago (the
  baseline two days before it), so its history capture reaches back that many
  days, as a late file, a replay or a test stream dated months back does;
- a 2,000-row delta stamped now, and a run with nothing new, as wall times.
- start-up apart: `fleettickets --version`, and the imports an ingest run pays
  before it reads anything, each the median wall time of 5 fresh interpreters.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from fleettickets import clock
from fleettickets.clock import EAT
from fleettickets.migrate import apply_migrations
from fleettickets_dev.localdb import ensure_cluster, stop_cluster
from fleettickets_dev.sample_stream import file_name, write_baseline_csv, write_delta_csv

BENCH_DB = "fleettickets_bench"


def server_url(workdir: Path) -> tuple[str, Path | None]:
    if os.environ.get("BENCH_DATABASE_URL"):
        return os.environ["BENCH_DATABASE_URL"], None
    datadir = workdir / "pg"
    # Durable settings: the figures should be what production would see.
    return ensure_cluster(datadir, durable=True).url(), datadir


def fresh_database(admin_url: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DB)))
    url = urlsplit(admin_url)._replace(path=f"/{BENCH_DB}").geturl()
    with psycopg.connect(url, autocommit=True) as conn:
        apply_migrations(conn)
    return url


def run_ingest(url: str, *paths: Path) -> tuple[float, int]:
    """Wall seconds and this child's peak RSS in KiB (the RSS of the largest child so far)."""
    args = [sys.executable, "-m", "fleettickets", "-q", "ingest", "--apply"]
    for path in paths:
        args += ["--inc-csv", str(path)]
    started = time.perf_counter()
    result = subprocess.run(args, env={**os.environ, "DATABASE_URL": url}, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"ingest failed: {result.stderr}")
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


def split(url: str, path: Path, seconds: float) -> str:
    """Where one file's run went, from the ledger: read + COPY, merge, and the rest."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT read_load_seconds, merge_seconds FROM tickets.ingest_files WHERE file_key LIKE %s",
            (f"%{path.name}",),
        ).fetchone()
    assert row is not None
    read_load, merge = float(row[0]), float(row[1])
    return (f"  of which read + clean + COPY to staging {read_load:.1f} s, merge {merge:.1f} s, "
            f"the rest (history capture, process start) {seconds - read_load - merge:.1f} s")  # fmt: skip


def startup_seconds(code: str, runs: int = 5) -> float:
    """Median wall seconds of a fresh interpreter running `code` (process start included)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return sorted(times)[runs // 2]


def floor(url: str, path: Path) -> float:
    """The cost of merely landing the rows as jsonb, measured on the same file."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle))
    columns = sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c)) for c in header)
    with psycopg.connect(url) as conn:
        conn.execute("DROP TABLE IF EXISTS floor_stage, floor_target")
        conn.execute(sql.SQL("CREATE UNLOGGED TABLE floor_stage ({})").format(columns))
        conn.execute("CREATE TABLE floor_target (ticket_id text PRIMARY KEY, raw jsonb NOT NULL)")
        conn.commit()
        started = time.perf_counter()
        with (
            conn.cursor().copy("COPY floor_stage FROM STDIN (FORMAT csv, HEADER true)") as copy,
            path.open("rb") as handle,
        ):
            while chunk := handle.read(1 << 20):
                copy.write(chunk)
        conn.execute("INSERT INTO floor_target SELECT ticket_id, to_jsonb(s) FROM floor_stage s")
        conn.commit()
        seconds = time.perf_counter() - started
        conn.execute("DROP TABLE floor_stage, floor_target")
        conn.commit()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--delta-rows", type=int, default=20_000)
    parser.add_argument("--days-back", type=int, default=170,
                        help="how many days before now the delta file is stamped (default 170)")  # fmt: skip
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="fleettickets-bench-"))
    workdir.chmod(0o755)
    admin_url, datadir = server_url(workdir)
    try:
        # The baseline two days before the delta, the delta --days-back days
        # ago, the small delta now: each run's history work is its own.
        today = clock.now().astimezone(EAT).replace(hour=6, minute=0, second=0, microsecond=0, tzinfo=None)
        at = today - timedelta(days=args.days_back)
        start = at - timedelta(days=2)
        baseline = workdir / file_name(start)
        delta = workdir / file_name(at)
        small = workdir / file_name(today)
        write_baseline_csv(baseline, args.rows, start=start)
        write_delta_csv(delta, args.delta_rows, baseline_rows=args.rows, start=start, at=at)
        write_delta_csv(small, 2_000, baseline_rows=args.rows, start=start, at=today)
        size_mb = baseline.stat().st_size / 1e6
        print(f"baseline: {args.rows:,} rows, {size_mb:.0f} MB; delta: {args.delta_rows:,} rows "
              f"stamped {args.days_back} days back")  # fmt: skip

        url = fresh_database(admin_url)
        floor_seconds = floor(url, baseline)
        print(f"floor (COPY + INSERT ... SELECT as jsonb): {floor_seconds:.1f} s, "
              f"{args.rows / floor_seconds:,.0f} rows/s")  # fmt: skip

        seconds, rss_kib = run_ingest(url, baseline)
        print(f"baseline ingest: {seconds:.1f} s, {args.rows / seconds:,.0f} rows/s, "
              f"peak RSS {rss_kib / 1024:.0f} MiB, ratio ingest/floor {seconds / floor_seconds:.2f} "
              f"(floor {floor_seconds:.1f} s)")  # fmt: skip
        print(split(url, baseline, seconds))
        seconds, rss_kib = run_ingest(url, delta)
        print(f"delta ingest ({args.delta_rows:,} rows, {args.days_back} days back): {seconds:.2f} s, "
              f"{args.delta_rows / seconds:,.0f} rows/s, peak RSS so far {rss_kib / 1024:.0f} MiB")  # fmt: skip
        print(split(url, delta, seconds))
        seconds, _ = run_ingest(url, small)
        print(f"2,000-row delta: {seconds:.2f} s wall (process start included)")
        seconds, _ = run_ingest(url, small)  # already in the ledger: nothing to do
        print(f"run with nothing new: {seconds:.2f} s wall (process start included)")
        version = startup_seconds("from fleettickets.cli import main; main(['--version'])")
        loaded = startup_seconds("import fleettickets.cli, fleettickets.ingest")
        print(f"start-up, paid by every scheduled run: `fleettickets --version` {version:.2f} s wall; "
              f"an ingest's imports (psycopg, boto3 and the rest) {loaded:.2f} s wall")  # fmt: skip
    finally:
        if datadir is not None:
            stop_cluster(datadir)
        subprocess.run(["rm", "-rf", str(workdir)], check=False)


if __name__ == "__main__":
    main()
