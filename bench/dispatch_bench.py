"""Benchmark of reporting.fn_dispatch_candidates on generated tickets (default 1,000,000).

    uv run python bench/dispatch_bench.py [--rows N] [--points N] [--seed N]

The tickets are the dashboard benchmark's (bench/dashboard_bench.py: 10% open,
12 clusters around Nairobi, 12.5% without coordinates), generated the same
way. Each case asks from `--points` (default 200) random points in Nairobi,
once each after one warm-up call, and prints p50, p95 and the slowest in
milliseconds (server work plus the transfer of the JSON text), then the plan
of one call, which shows the GiST index in use. Uses BENCH_DATABASE_URL when
set; otherwise a throwaway local cluster. The figures are recorded in
docs/phase-2-dashboard.md ("Dispatch").
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import psycopg
from dashboard_bench import BENCH_DB, prepare, with_dbname  # type: ignore[import-not-found]
from psycopg import sql

from fleettickets_dev.localdb import ensure_cluster, stop_cluster

# Nairobi, roughly the ring the generated clusters sit in.
LAT_RANGE = (-1.40, -1.15)
LNG_RANGE = (36.68, 36.97)

CASES = [
    ("distance, 10 nearest", "SELECT reporting.fn_dispatch_candidates(%s, %s)::text"),
    (
        "distance, 10 nearest, cluster Kayole",
        "SELECT reporting.fn_dispatch_candidates(%s, %s, p_cluster => 'kayole')::text",
    ),
    (
        "distance, 10 nearest, team Kayole Team 1",
        "SELECT reporting.fn_dispatch_candidates(%s, %s, p_team => 'Kayole Team 1')::text",
    ),
    (
        "urgency within 3 km, 10",
        "SELECT reporting.fn_dispatch_candidates(%s, %s, p_within_m => 3000, p_order => 'urgency')::text",
    ),
    (
        "documented KNN query on the view",
        "SELECT ticket_id, cluster, hours_open, round(ST_Distance(geog, "
        "ST_SetSRID(ST_MakePoint(%(lng)s, %(lat)s), 4326)::geography))::int AS metres FROM tickets.inc_open_sla "
        "ORDER BY geog <-> ST_SetSRID(ST_MakePoint(%(lng)s, %(lat)s), 4326)::geography LIMIT 10",
    ),
]


def points(n: int, seed: int) -> list[tuple[float, float]]:
    """(lng, lat) pairs, uniform over the box."""
    rng = random.Random(seed)
    return [(rng.uniform(*LNG_RANGE), rng.uniform(*LAT_RANGE)) for _ in range(n)]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def time_case(conn: psycopg.Connection, query: str, where: list[tuple[float, float]]) -> list[float]:
    def call(lng: float, lat: float) -> None:
        args = {"lng": lng, "lat": lat} if "%(lng)s" in query else (lng, lat)
        conn.execute(query, args).fetchall()

    call(*where[0])  # warm the cache and the session once
    times = []
    for lng, lat in where:
        start = time.perf_counter()
        call(lng, lat)
        times.append((time.perf_counter() - start) * 1000)
    return times


def show_plan(conn: psycopg.Connection, lng: float, lat: float) -> None:
    """The plans of one call's statements, through auto_explain of nested statements."""
    conn.execute("LOAD 'auto_explain'")
    conn.execute("SET auto_explain.log_min_duration = 0")
    conn.execute("SET auto_explain.log_nested_statements = on")
    conn.execute("SET auto_explain.log_analyze = on")
    conn.execute("SET client_min_messages = log")
    plans: list[str] = []
    conn.add_notice_handler(lambda d: plans.append(d.message_primary or ""))
    conn.execute(CASES[0][1], (lng, lat)).fetchall()
    conn.execute("RESET client_min_messages")
    for plan in plans:
        if "spatial_ref_sys" not in plan:
            print(plan)


def run(url: str, n_points: int, seed: int) -> None:
    where = points(n_points, seed)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) tickets.inc")  # the benchmark's indexes, all-visible
        print(f"{'case':40} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}   ({n_points} points)")
        for label, query in CASES:
            times = time_case(conn, query, where)
            print(f"{label:40} {statistics.median(times):8.2f} {percentile(times, 95):8.2f} {max(times):8.2f}")
        print("--- plan of one call (distance, 10 nearest)")
        show_plan(conn, *where[0])


def bench(server: str, rows: int, n_points: int, seed: int) -> None:
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DB)))
    url = with_dbname(server, BENCH_DB)
    prepare(url, rows, span_days=90)
    run(url, n_points, seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--points", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20260620)
    args = parser.parse_args()
    server = os.environ.get("BENCH_DATABASE_URL")
    if server:
        bench(server, args.rows, args.points, args.seed)
        return
    workdir = Path(tempfile.mkdtemp(prefix="fleettickets-bench-"))
    workdir.chmod(0o755)
    try:
        cluster = ensure_cluster(workdir / "data", durable=False)
        bench(cluster.url(), args.rows, args.points, args.seed)
    finally:
        stop_cluster(workdir / "data")
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
