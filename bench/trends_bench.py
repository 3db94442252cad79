"""Benchmark of reporting.fn_inc_trends and fn_team_closures on generated tickets (default 1,000,000).

    uv run python bench/trends_bench.py [--rows N] [--span-days N] [--runs N] [--explain]

The tickets are the dashboard benchmark's (bench/dashboard_bench.py), spread
over a year by default. The history is generated beside them: one closure
event per closed ticket, observed an hour after it closed, whose team differs
from today's for one ticket in twenty (a later re-assignment), and one daily
row per day of the span. Uses BENCH_DATABASE_URL when set, else a throwaway
local cluster. The figures it prints are recorded in docs/phase-2-dashboard.md
("Trends and team closures").
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import psycopg
from dashboard_bench import BENCH_DB, prepare, with_dbname  # type: ignore[import-not-found]
from psycopg import sql

from fleettickets_dev.localdb import ensure_cluster, stop_cluster

HISTORY = """
INSERT INTO tickets.closure_events (ticket_id, observed_at, closed_at, source_key, first_observation,
                                    owner, assigned_team, cluster, region, mttr_hours, sla_status)
SELECT i.ticket_id, i.closed_at + interval '1 hour', i.closed_at, 'bench', false, i.owner,
       CASE WHEN hashtext(i.ticket_id) % 20 = 0 THEN 'Moved ' || i.assigned_team ELSE i.assigned_team END,
       i.cluster, i.region, i.mttr / 60.0, i.sla_status
  FROM tickets.inc i
 WHERE i.closed_at IS NOT NULL AND NOT i.is_actionable
 ORDER BY i.closed_at  -- the capture appends events in the order it observes them
"""
DAILY_ROWS = """
INSERT INTO tickets.inc_daily_snapshot (snapshot_date, as_of, open_total, open_breached,
                                        open_on_first_seen_clock, opened, closed_today, open_by_cluster,
                                        breached_by_cluster)
SELECT d::date, d + interval '1 day', 100000, 60000, 30000, 2700, 2500, '{"Kayole": 8000, "KAYOLE": 400}',
       '{"Kayole": 5000, "KAYOLE": 250}'
  FROM generate_series(%(today)s::date - %(span_days)s, %(today)s::date, interval '1 day') AS d
"""


def cases(today: object) -> list[tuple[str, str, dict[str, object]]]:
    day = timedelta(days=1)
    return [
        ("trends, 90 days by day", "fn_inc_trends", {"p_from": today - 89 * day, "p_to": today}),  # type: ignore[operator]
        ("trends, 52 weeks by week", "fn_inc_trends", {"p_from": today - 363 * day, "p_to": today, "p_grain": "week"}),  # type: ignore[operator]
        (
            "trends, 90 days by day, Kayole",
            "fn_inc_trends",
            {"p_from": today - 89 * day, "p_to": today, "p_cluster": "kayole"},
        ),  # type: ignore[operator]
        ("team closures, 90 days", "fn_team_closures", {"p_from": today - 89 * day, "p_to": today}),  # type: ignore[operator]
        (
            "team closures, 90 days, Kayole",
            "fn_team_closures",
            {"p_from": today - 89 * day, "p_to": today, "p_cluster": "kayole"},
        ),  # type: ignore[operator]
    ]


def call(function: str, args: dict[str, object]) -> sql.Composed:
    named = sql.SQL(", ").join(sql.SQL("{} => {}").format(sql.Identifier(k), sql.Literal(v)) for k, v in args.items())
    return sql.SQL("SELECT reporting.{}({})::text").format(sql.Identifier(function), named)


def run(url: str, span_days: int, runs: int, explain: bool) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        today = conn.execute("SELECT (now() AT TIME ZONE 'Africa/Nairobi')::date").fetchone()[0]
        start = time.perf_counter()
        conn.execute("SET synchronous_commit = on")
        conn.execute(HISTORY)
        conn.execute(DAILY_ROWS, {"today": today, "span_days": span_days})
        conn.execute("VACUUM (ANALYZE) tickets.closure_events, tickets.inc_daily_snapshot")
        events = conn.execute("SELECT count(*) FROM tickets.closure_events").fetchone()[0]
        print(
            f"generated {events:,} closure events and {span_days + 1} daily rows in {time.perf_counter() - start:.0f} s"
        )
        print(f"{'case':34} {'median ms':>10} {'min ms':>8} {'payload':>10}")
        for label, function, args in cases(today):
            query = call(function, args)
            conn.execute(query)  # warm the cache once
            times, size = [], 0
            for _ in range(runs):
                began = time.perf_counter()
                row = conn.execute(query).fetchone()
                times.append((time.perf_counter() - began) * 1000)
                size = len(row[0]) if row else 0
            print(f"{label:34} {statistics.median(times):10.0f} {min(times):8.0f} {size / 1e3:7.1f} kB")
        if explain:
            conn.execute("LOAD 'auto_explain'")
            conn.execute("SET auto_explain.log_min_duration = 0")
            conn.execute("SET auto_explain.log_nested_statements = on")
            conn.execute("SET auto_explain.log_analyze = on")
            conn.execute("SET client_min_messages = log")
            conn.add_notice_handler(lambda d: print(d.message_primary))
            for label, function, args in (cases(today)[0], cases(today)[3]):
                print(f"--- plan: {label}")
                conn.execute(call(function, args))


def bench(server: str, rows: int, span_days: int, runs: int, explain: bool) -> None:
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DB)))
    url = with_dbname(server, BENCH_DB)
    prepare(url, rows, span_days)
    run(url, span_days, runs, explain)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--span-days", type=int, default=365, help="days over which closed tickets were created")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--explain", action="store_true", help="print the plans of two cases")
    args = parser.parse_args()
    server = os.environ.get("BENCH_DATABASE_URL")
    if server:
        bench(server, args.rows, args.span_days, args.runs, args.explain)
        return
    workdir = Path(tempfile.mkdtemp(prefix="fleettickets-bench-"))
    workdir.chmod(0o755)
    try:
        cluster = ensure_cluster(workdir / "data", durable=False)
        bench(cluster.url(), args.rows, args.span_days, args.runs, args.explain)
    finally:
        stop_cluster(workdir / "data")
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
