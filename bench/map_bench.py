"""Benchmark of the map page: file size and time until it has drawn in headless Chromium.

    uv run python bench/map_bench.py [--rows N] [--runs N] [--keep FILE]

Generates tickets with the dashboard benchmark's generator (default 120,000:
about 12,000 open, so the 10,000-feature cap is reached for open and for
closed tickets), 12 cluster points, 480 location answers and 90 daily rows,
writes the page with `--window last_30_days` and tiles off, and opens it
from file:// in headless Chromium (the tests' browser). It prints the file
size, the time from navigation start until the markers are painted (median
of --runs loads), and the time one 40-pixel pan takes to repaint. Uses
BENCH_DATABASE_URL when set, otherwise a throwaway local cluster. The figures
are recorded in docs/map.md ("Performance").
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the tests' browser helper

from dashboard_bench import BENCH_DB, GENERATE, with_dbname  # noqa: E402

from fleettickets import map_page  # noqa: E402
from fleettickets.migrate import apply_migrations  # noqa: E402
from fleettickets.settings import Settings  # noqa: E402
from fleettickets_dev.localdb import ensure_cluster, stop_cluster  # noqa: E402
from tests.browser import chromium, console_errors  # noqa: E402

CLUSTERS = """
INSERT INTO tickets.geo_clusters (cluster_key, cluster, latitude, longitude, verified)
SELECT tickets.place_key(name), name, lat, lon, n % 2 = 0
  FROM (VALUES (0, 'Quarry Road', -1.2840, 36.8480), (1, 'Pipeline', -1.3170, 36.8960),
               (2, 'Kayole', -1.2730, 36.9130), (3, 'Umoja', -1.2830, 36.8950),
               (4, 'Westlands', -1.2670, 36.8110), (5, 'Kasarani', -1.2210, 36.8960),
               (6, 'Embakasi', -1.3230, 36.8930), (7, 'Langata', -1.3620, 36.7440),
               (8, 'Ruaka', -1.2060, 36.7800), (9, 'Thika Road', -1.1850, 36.9300),
               (10, 'Mombasa Road', -1.3380, 36.8650), (11, 'Karen', -1.3190, 36.7070)) AS c(n, name, lat, lon)
"""
LOCATIONS = """
INSERT INTO tickets.geo_locations (location_key, location_name, cluster_key, latitude, longitude, status,
                                   distance_km, verified)
SELECT 'site ' || c.cluster_key || ' ' || i, 'Site ' || i || ', ' || c.cluster, c.cluster_key,
       CASE WHEN i %% 20 = 0 THEN NULL ELSE c.latitude + (random() - 0.5) * 0.1 END,
       CASE WHEN i %% 20 = 0 THEN NULL ELSE c.longitude + (random() - 0.5) * 0.1 END,
       CASE WHEN i %% 20 = 0 THEN 'not_found' WHEN i %% 9 = 0 THEN 'rejected' ELSE 'ok' END,
       random() * 10, i %% 3 = 0 AND i %% 20 <> 0 AND i %% 9 <> 0
  FROM tickets.geo_clusters c, generate_series(1, 40) AS i
"""
DAILY_ROWS = """
INSERT INTO tickets.inc_daily_snapshot (snapshot_date, as_of, open_total, open_breached,
                                        open_on_first_seen_clock, opened, closed_today, open_by_cluster)
SELECT d, d + interval '1 day', 9000 + (random() * 3000)::int, (random() * 3000)::int, 0,
       (random() * 3000)::int, (random() * 3000)::int, '{}'
  FROM generate_series(%(now)s::date - 89, %(now)s::date, interval '1 day') AS d
"""

PAN = """
const done = arguments[arguments.length - 1];
const map = window.fleetMap.map;
let step = 0;
const start = performance.now();
function next() {
  if (step++ === 20) { done((performance.now() - start) / 20); return; }
  map.panBy([40, 0], {animate: false});
  requestAnimationFrame(next);
}
next();
"""


def prepare(url: str, rows: int, now: datetime) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        apply_migrations(conn)
        start = time.perf_counter()
        # Cluster points first, so tickets without coordinates are placed on them.
        conn.execute(CLUSTERS)
        conn.execute(GENERATE, {"rows": rows, "now": now, "span_days": 90})
        for statement in (LOCATIONS, DAILY_ROWS):
            conn.execute(statement, {"now": now})
        conn.execute("VACUUM (ANALYZE) tickets.inc")
        print(f"generated {rows:,} tickets in {time.perf_counter() - start:.0f} s")


def measure(url: str, out: Path, runs: int, now: datetime) -> None:
    start = time.perf_counter()
    result = map_page.write_map(Settings(database_url=url), out, window="last_30_days", tiles="none", now=now)
    print(
        f"wrote {result.open_features:,} open and {result.closed_features:,} closed features, "
        f"{result.backlog_days} daily rows: {result.bytes_written / 1e6:.1f} MB "
        f"in {time.perf_counter() - start:.1f} s"
    )
    with chromium() as driver:
        drawn, pans = [], []
        for _ in range(runs):
            driver.get(out.as_uri())
            while driver.execute_script("return document.body.getAttribute('data-drawn')") != "true":
                time.sleep(0.02)
            drawn.append(driver.execute_script("return performance.getEntriesByName('map-drawn')[0].startTime"))
            pans.append(driver.execute_async_script(PAN))
        errors = console_errors(driver)
    print(
        f"drawn in headless Chromium after {statistics.median(drawn):.0f} ms "
        f"(median of {runs}; all: {', '.join(f'{ms:.0f}' for ms in drawn)})"
    )
    print(f"one 40 px pan repainted in {statistics.median(pans):.0f} ms (median)")
    if errors:
        print(f"console errors: {errors}")


def bench(server: str, rows: int, runs: int, keep: Path | None) -> None:
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DB)))
        now = admin.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    url = with_dbname(server, BENCH_DB)
    prepare(url, rows, now)
    if keep:
        measure(url, keep, runs, now)
        return
    with tempfile.TemporaryDirectory(prefix="fleettickets-map-bench-") as folder:
        measure(url, Path(folder) / "map.html", runs, now)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=120_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, metavar="FILE", help="write the page here and keep it")
    args = parser.parse_args()
    server = os.environ.get("BENCH_DATABASE_URL")
    if server:
        bench(server, args.rows, args.runs, args.keep)
        return
    workdir = Path(tempfile.mkdtemp(prefix="fleettickets-bench-"))
    workdir.chmod(0o755)
    try:
        cluster = ensure_cluster(workdir / "data", durable=False)
        bench(cluster.url(), args.rows, args.runs, args.keep)
    finally:
        stop_cluster(workdir / "data")
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
