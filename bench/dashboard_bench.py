"""Benchmark of reporting.fn_inc_dashboard on generated tickets (default 1,000,000).

    uv run python bench/dashboard_bench.py [--rows N] [--span-days N] [--runs N] [--explain]

Uses BENCH_DATABASE_URL when set (a server where it may create and drop the
database `fleettickets_bench`); otherwise it starts a throwaway local cluster
in a temporary folder and removes it afterwards. Tickets are generated in SQL:
closed ones created evenly over the last `--span-days` (default 90), ~10%
open, 12 clusters, ~150 engineers in 24 teams,
~30% without created_at_service, ~12% without any coordinates. For each case
it prints the median wall time (with the transfer of the JSON text) and, when
the server runs on this machine, the median CPU time of its backend; then the
cost of one feature: `last_30_days` and `today` again with one feature per
collection, the difference divided by the features left out. The figures it
prints are recorded in docs/phase-2-dashboard.md ("Performance").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from fleettickets.migrate import apply_migrations
from fleettickets_dev.localdb import ensure_cluster, stop_cluster

BENCH_DB = "fleettickets_bench"

# One INSERT ... SELECT: realistic spreads without a round trip per row.
GENERATE = """
WITH c(n, name, lat, lon) AS (VALUES
    (0, 'Quarry Road', -1.2840, 36.8480), (1, 'Pipeline', -1.3170, 36.8960),
    (2, 'Kayole', -1.2730, 36.9130), (3, 'Umoja', -1.2830, 36.8950),
    (4, 'Westlands', -1.2670, 36.8110), (5, 'Kasarani', -1.2210, 36.8960),
    (6, 'Embakasi', -1.3230, 36.8930), (7, 'Langata', -1.3620, 36.7440),
    (8, 'Ruaka', -1.2060, 36.7800), (9, 'Thika Road', -1.1850, 36.9300),
    (10, 'Mombasa Road', -1.3380, 36.8650), (11, 'Karen', -1.3190, 36.7070)
), t AS (
    SELECT g,
           (g * 7919) %% 12 AS cl,
           -- open tickets are mostly recent; closed ones spread over the span
           CASE WHEN g %% 10 = 0 THEN %(now)s - random() ^ 2 * interval '20 days'
                ELSE %(now)s - random() * %(span_days)s * interval '1 day' END AS created,
           -ln(1 - random()) * 14 AS mttr_hours
      FROM generate_series(1::bigint, %(rows)s) AS g
)
INSERT INTO tickets.inc (ticket_id, raw)
SELECT 'WOT' || lpad(t.g::text, 8, '0'),
       jsonb_build_object(
           'ticket_id', 'WOT' || lpad(t.g::text, 8, '0'),
           'normalized_status', CASE WHEN t.g %% 10 = 0
                THEN (ARRAY['open', 'assigned', 'in_progress', 'on_hold'])[1 + t.g %% 4]
                ELSE (ARRAY['resolved', 'closed', 'closed', 'cancelled'])[1 + t.g %% 4] END,
           'is_actionable', (t.g %% 10 = 0)::text,
           'bucket', CASE WHEN t.g %% 10 = 0 THEN 'pending' ELSE 'closed' END,
           'service_type', 'inc',
           'cluster', CASE WHEN t.g %% 7 = 0 THEN upper(c.name) ELSE c.name END,
           'region', 'Nairobi East',
           'location_name', 'NW_' || upper(replace(c.name, ' ', '_')) || '_FDT' || (t.g %% 40),
           'assigned_team', c.name || ' Team ' || (1 + t.g %% 2),
           'owner', 'eng' || ((t.g * 31) %% 150),
           'sla_status', CASE WHEN t.mttr_hours > 40 THEN 'Breached' ELSE 'Compliant' END,
           'mttr', CASE WHEN t.g %% 10 <> 0 THEN round(t.mttr_hours::numeric, 2)::text END,
           'created_at_service', CASE WHEN t.g %% 10 IN (3, 6, 9) THEN ''
                ELSE to_char(t.created AT TIME ZONE 'Africa/Nairobi', 'YYYY-MM-DD HH24:MI:SS') END,
           'first_seen_at', to_char((t.created + interval '25 minutes') AT TIME ZONE 'Africa/Nairobi',
                                    'YYYY-MM-DD HH24:MI:SS'),
           'closed_at', CASE WHEN t.g %% 10 <> 0 THEN to_char(
                (least(t.created + t.mttr_hours * interval '1 hour', %(now)s))
                    AT TIME ZONE 'Africa/Nairobi', 'YYYY-MM-DD HH24:MI:SS') END,
           'latitude', CASE WHEN t.g %% 8 <> 0 THEN round((c.lat + (random() - 0.5) * 0.04)::numeric, 6)::text END,
           'longitude', CASE WHEN t.g %% 8 <> 0 THEN round((c.lon + (random() - 0.5) * 0.04)::numeric, 6)::text END)
  FROM t JOIN c ON c.n = t.cl
"""

CASES = [
    ("last_30_days", {"p_window": "last_30_days"}),
    ("today", {"p_window": "today"}),
    ("last_30_days, cluster Kayole", {"p_window": "last_30_days", "p_cluster": "kayole"}),
    ("today, cluster Kayole", {"p_window": "today", "p_cluster": "kayole"}),
]


def call(args: dict[str, str]) -> sql.Composed:
    named = sql.SQL(", ").join(sql.SQL("{} => {}").format(sql.Identifier(k), sql.Literal(v)) for k, v in args.items())
    return sql.SQL("SELECT reporting.fn_inc_dashboard({})::text").format(named)


def backend_cpu_ms(pid: int) -> float | None:
    """The server process's user + system CPU so far, when it runs on this machine."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def timed(conn: psycopg.Connection, query: sql.Composed, runs: int) -> tuple[float, float | None, str]:
    """Median wall time in ms (server work + transfer of the text), median server CPU in ms, the payload."""
    times, cpu, payload = [], [], ""
    pid = conn.info.backend_pid
    conn.execute(query)  # warm the cache once
    for _ in range(runs):
        cpu_before = backend_cpu_ms(pid)
        start = time.perf_counter()
        row = conn.execute(query).fetchone()
        times.append((time.perf_counter() - start) * 1000)
        cpu_after = backend_cpu_ms(pid)
        if cpu_before is not None and cpu_after is not None:
            cpu.append(cpu_after - cpu_before)
        payload = row[0] if row else ""
    return statistics.median(times), statistics.median(cpu) if cpu else None, payload


def feature_count(payload: str) -> int:
    document = json.loads(payload)
    return len(document["open"]["features"]) + len(document["closed"]["features"])


def prepare(url: str, rows: int, span_days: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        apply_migrations(conn)
        start = time.perf_counter()
        now = conn.execute("SELECT now()").fetchone()[0]
        # The throwaway cluster commits asynchronously, and until the insert's
        # commit record is flushed VACUUM cannot mark its pages all-visible:
        # the index-only scans would turn into heap fetches or sequential
        # scans. A synchronous commit here gives the steady state autovacuum
        # keeps in production.
        conn.execute("SET synchronous_commit = on")
        conn.execute(GENERATE, {"rows": rows, "now": now, "span_days": span_days})
        conn.execute("VACUUM (ANALYZE) tickets.inc")
        pages, visible = conn.execute(
            "SELECT relpages, relallvisible FROM pg_class WHERE oid = 'tickets.inc'::regclass"
        ).fetchone()
        print(
            f"generated {rows:,} tickets (closed ones over {span_days} days) in {time.perf_counter() - start:.0f} s; "
            f"all-visible pages {visible:,} of {pages:,}"
        )
        stats = conn.execute(
            "SELECT count(*) FILTER (WHERE is_actionable), "
            "count(*) FILTER (WHERE closed_at >= now() - interval '30 days'), "
            "count(*) FILTER (WHERE geom IS NULL), pg_size_pretty(pg_total_relation_size('tickets.inc')) "
            "FROM tickets.inc"
        ).fetchone()
        print(
            f"open {stats[0]:,}; closed in last 30 days {stats[1]:,}; unmapped {stats[2]:,}; table + indexes {stats[3]}"
        )


def run(url: str, runs: int, explain: bool) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        print(f"{'case':34} {'median ms':>10} {'server CPU':>10} {'payload':>10}")
        for label, args in CASES:
            ms, cpu, payload = timed(conn, call(args), runs)
            print(f"{label:34} {ms:10.0f} {cpu_text(cpu):>10} {len(payload) / 1e6:8.1f} MB")
        # What each feature adds: the same question with one feature per
        # collection, the difference divided by the features it left out.
        # Server CPU (read from /proc when the server runs here) is steadier
        # than wall time on a shared machine; /proc counts in 10 ms ticks.
        print(f"{'per feature (default vs 1 per collection)':44} {'wall':>8} {'server CPU':>10}")
        for label, args in CASES[:2]:
            ms, cpu, payload = timed(conn, call(args), runs)
            ms_one, cpu_one, payload_one = timed(conn, call({**args, "p_max_features": "1"}), runs)
            left_out = feature_count(payload) - feature_count(payload_one)
            per_cpu = None if cpu is None or cpu_one is None else (cpu - cpu_one) / left_out * 1000
            print(
                f"{label + f' ({left_out:,} features)':44} {(ms - ms_one) / left_out * 1000:6.1f} us"
                f" {cpu_text(per_cpu, 'us'):>10}"
            )
        if explain:
            # The function body's plan, via auto_explain of nested statements.
            conn.execute("LOAD 'auto_explain'")
            conn.execute("SET auto_explain.log_min_duration = 0")
            conn.execute("SET auto_explain.log_nested_statements = on")
            conn.execute("SET auto_explain.log_analyze = on")
            conn.execute("SET client_min_messages = log")
            conn.add_notice_handler(lambda d: print(d.message_primary))
            for label, args in CASES[2:3]:
                print(f"--- plan: {label}")
                conn.execute(call(args))


def cpu_text(value: float | None, unit: str = "ms") -> str:
    if value is None:
        return "-"
    return f"{value:.1f} us" if unit == "us" else f"{value:.0f} ms"


def with_dbname(url: str, dbname: str) -> str:
    return urlsplit(url)._replace(path=f"/{dbname}").geturl()


def bench(server: str, rows: int, span_days: int, runs: int, explain: bool) -> None:
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DB)))
    url = with_dbname(server, BENCH_DB)
    prepare(url, rows, span_days)
    run(url, runs, explain)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--span-days",
        type=int,
        default=90,
        help="days over which the closed tickets were created; sets how many closures a 30-day window holds",
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--explain", action="store_true", help="print the plan of one case")
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
