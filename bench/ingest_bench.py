"""Ingestion benchmark: a 1,000,000-row baseline and its deltas against the COPY floor.

Usage: uv run python bench/ingest_bench.py [--rows N] [--delta-rows N] [--days-back N]
                                           [--small-rows N]

It starts (or reuses, with BENCH_DATABASE_URL) a PostgreSQL server, creates a
fresh database with every migration, writes the sample CSVs, and prints:
- the floor on the baseline CSV, measured in the same run: COPY into an
  unlogged staging table of text columns, then one INSERT ... SELECT of
  ticket_id and the row as jsonb into a plain table with only a primary key;
- the baseline ingest's wall time, rows/s, peak RSS (the CLI in a child
  process) and ratio ingest / floor, split into read + clean + COPY, merge,
  the first history capture, the rest of the run (connection, ledger) and
  process start;
- the large delta the same way: its file is stamped --days-back days ago (the
  baseline two days before it), so its history capture reaches back that many
  days, as a late file, a replay or a test stream dated months back does;
- before the deltas the database is settled as a database in service is when
  its next scheduled run comes, 20 minutes later: vacuumed and analysed (what
  autovacuum does within a minute of a load) and checkpointed; and each timed
  run after it starts from a checkpoint (production checkpoints every few
  minutes), so no run pays for the writes of the one before it;
- a 2,000-row delta stamped a minute ago, and a run with nothing new: the run's own
  time (what `ingest --json` reports as seconds, from connecting to the end)
  and its wall time (process start and imports included);
- the same two on a second database of --small-rows tickets (default 25,000,
  production's size) and the ratio big / small: a run's cost should grow with
  what changed, not with the table;
- start-up apart: `fleettickets --version` and `--help`, and the imports an
  ingest run pays before it reads anything, each the median wall time of 5
  fresh interpreters.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
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
SMALL_DB = "fleettickets_bench_small"
SMALL_DELTA_ROWS = 2_000


def server_url(workdir: Path) -> tuple[str, Path | None]:
    if os.environ.get("BENCH_DATABASE_URL"):
        return os.environ["BENCH_DATABASE_URL"], None
    datadir = workdir / "pg"
    # Durable settings: the figures should be what production would see.
    return ensure_cluster(datadir, durable=True).url(), datadir


def fresh_database(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = urlsplit(admin_url)._replace(path=f"/{name}").geturl()
    with psycopg.connect(url, autocommit=True) as conn:
        apply_migrations(conn)
    return url


@dataclass
class Run:
    """One `ingest --apply --json` in a child process."""

    wall: float  # process start and imports included
    seconds: float  # the run itself, as the report gives it: from connecting to the end
    rss_kib: int  # the largest child's peak RSS so far
    read_load: float
    merge: float
    capture: float

    def split(self) -> str:
        rest = self.seconds - self.read_load - self.merge - self.capture
        return (
            f"  of which read + clean + COPY to staging {self.read_load:.2f} s, merge {self.merge:.2f} s, "
            f"history capture {self.capture:.2f} s, the rest of the run {rest:.2f} s; "
            f"process start and imports {self.wall - self.seconds:.2f} s"
        )

    def times(self) -> str:
        return f"{self.seconds:.2f} s run time, {self.wall:.2f} s wall"


def run_ingest(url: str, *paths: Path) -> Run:
    args = [sys.executable, "-m", "fleettickets", "-q", "ingest", "--apply", "--json"]
    for path in paths:
        args += ["--inc-csv", str(path)]
    started = time.perf_counter()
    result = subprocess.run(args, env={**os.environ, "DATABASE_URL": url}, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"ingest failed: {result.stderr}")
    report = json.loads(result.stdout)
    files = report["files"]
    return Run(
        wall=wall,
        seconds=report["seconds"],
        rss_kib=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        read_load=sum(f["read_load_seconds"] for f in files),
        merge=sum(f["merge_seconds"] for f in files),
        capture=report["history"]["seconds"],
    )


def startup_seconds(*args: str, runs: int = 5) -> float:
    """Median wall seconds of a fresh interpreter run with `args` (process start included)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, *args], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return sorted(times)[runs // 2]


def settle(url: str, *, vacuum: bool = False) -> None:
    """Leave the database as the next scheduled run would find it (see the module's docstring)."""
    with psycopg.connect(url, autocommit=True) as conn:
        if vacuum:
            conn.execute("VACUUM (ANALYZE)")
        conn.execute("CHECKPOINT")


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


def small_runs(admin_url: str, workdir: Path, rows: int, start: datetime, today: datetime) -> tuple[Run, Run]:
    """The 2,000-row delta and the run with nothing new on a database of `rows` tickets."""
    folder = workdir / "small"
    folder.mkdir()
    baseline, delta = folder / file_name(start), folder / file_name(today)
    write_baseline_csv(baseline, rows, start=start)
    write_delta_csv(delta, SMALL_DELTA_ROWS, baseline_rows=rows, start=start, at=today)
    url = fresh_database(admin_url, SMALL_DB)
    run_ingest(url, baseline)
    settle(url, vacuum=True)
    first = run_ingest(url, delta)
    settle(url)
    return first, run_ingest(url, delta)  # the second: already in the ledger


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--delta-rows", type=int, default=20_000)
    parser.add_argument(
        "--days-back", type=int, default=170, help="how many days before now the delta file is stamped (default 170)"
    )
    parser.add_argument(
        "--small-rows", type=int, default=25_000, help="tickets in the second, small database (default 25,000)"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="fleettickets-bench-"))
    workdir.chmod(0o755)
    admin_url, datadir = server_url(workdir)
    try:
        # The baseline two days before the delta, the delta --days-back days
        # ago, the small delta a minute ago: each run's history work is its
        # own. Never later than now: a version stamped after a capture keeps
        # that capture's day open, and the next run recounts it whole.
        today = clock.now().astimezone(EAT).replace(second=0, microsecond=0, tzinfo=None) - timedelta(minutes=1)
        at = today - timedelta(days=args.days_back)
        start = at - timedelta(days=2)
        baseline = workdir / file_name(start)
        delta = workdir / file_name(at)
        small = workdir / file_name(today)
        write_baseline_csv(baseline, args.rows, start=start)
        write_delta_csv(delta, args.delta_rows, baseline_rows=args.rows, start=start, at=at)
        write_delta_csv(small, SMALL_DELTA_ROWS, baseline_rows=args.rows, start=start, at=today)
        size_mb = baseline.stat().st_size / 1e6
        print(
            f"baseline: {args.rows:,} rows, {size_mb:.0f} MB; delta: {args.delta_rows:,} rows "
            f"stamped {args.days_back} days back"
        )

        url = fresh_database(admin_url, BENCH_DB)
        floor_seconds = floor(url, baseline)
        print(
            f"floor (COPY + INSERT ... SELECT as jsonb): {floor_seconds:.1f} s, {args.rows / floor_seconds:,.0f} rows/s"
        )

        run = run_ingest(url, baseline)
        print(
            f"baseline ingest: {run.wall:.1f} s wall, {args.rows / run.wall:,.0f} rows/s, "
            f"peak RSS {run.rss_kib / 1024:.0f} MiB, ratio ingest/floor {run.wall / floor_seconds:.2f} "
            f"(floor {floor_seconds:.1f} s)"
        )
        print(run.split())
        print(f"  first history capture: {run.capture:.1f} s")
        settle(url, vacuum=True)
        run = run_ingest(url, delta)
        print(
            f"delta ingest ({args.delta_rows:,} rows, {args.days_back} days back): {run.times()}, "
            f"peak RSS so far {run.rss_kib / 1024:.0f} MiB"
        )
        print(run.split())
        settle(url)
        first = run_ingest(url, small)
        settle(url)
        big = first, run_ingest(url, small)  # the second: already in the ledger
        little = small_runs(admin_url, workdir, args.small_rows, start, today)
        for label, on_big, on_small in zip(("2,000-row delta", "run with nothing new"), big, little, strict=True):
            print(
                f"{label}: {args.rows:,} tickets {on_big.times()}; {args.small_rows:,} tickets "
                f"{on_small.times()}; ratio big/small {on_big.seconds / on_small.seconds:.2f} run time, "
                f"{on_big.wall / on_small.wall:.2f} wall"
            )
            print(f"  on {args.rows:,}:" + on_big.split()[1:])
        version = startup_seconds("-m", "fleettickets", "--version")
        helped = startup_seconds("-m", "fleettickets", "--help")
        loaded = startup_seconds("-c", "import fleettickets.cli, fleettickets.ingest")
        print(
            f"start-up, paid by every scheduled run on top of its run time: `fleettickets --version` "
            f"{version:.2f} s wall, `--help` {helped:.2f} s; an ingest's imports (psycopg, boto3 and "
            f"the rest) {loaded:.2f} s wall"
        )
    finally:
        if datadir is not None:
            stop_cluster(datadir)
        subprocess.run(["rm", "-rf", str(workdir)], check=False)


if __name__ == "__main__":
    main()
