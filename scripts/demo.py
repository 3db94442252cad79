"""The main job end to end on local defaults (see scripts/demo)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import pwd
import subprocess
import sys
from pathlib import Path

import psycopg
from moto.server import ThreadedMotoServer
from psycopg import sql

from fleettickets.s3 import make_s3_client
from fleettickets.settings import Settings
from fleettickets_dev.localdb import ensure_cluster, free_port, stop_cluster
from fleettickets_dev.sample_stream import write_sample_stream

ROOT = Path(__file__).resolve().parent.parent
DEMO_DB = "fleettickets_demo"


def state_dir() -> Path:
    """.local/ in the checkout, unless the server's user could not reach it there."""
    local = ROOT / ".local"
    if os.geteuid() != 0 or _reachable_by_postgres(ROOT):
        return local
    return Path("/var/tmp/fleettickets-demo")


def _reachable_by_postgres(path: Path) -> bool:
    uid = pwd.getpwnam("postgres").pw_uid
    for part in [path, *path.parents]:
        mode = part.stat().st_mode
        if part.stat().st_uid != uid and not mode & 0o001:
            return False
    return True


def run(args: list[str], env: dict[str, str]) -> None:
    print(f"\n$ fleettickets {' '.join(args)}", flush=True)
    result = subprocess.run([sys.executable, "-m", "fleettickets", *args], env=env)
    if result.returncode != 0:
        sys.exit(result.returncode)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stop", action="store_true", help="stop the local database server")
    parser.add_argument("--no-tiles", action="store_true", help="draw the map on a plain background (no tile requests)")
    args = parser.parse_args()
    map_options = ["--tiles", "none"] if args.no_tiles else []
    state = state_dir()
    datadir = state / "pg"
    if args.stop:
        stop_cluster(datadir)
        print(f"stopped the local PostgreSQL in {datadir}")
        return

    state.mkdir(parents=True, exist_ok=True)
    state.chmod(0o755)
    cluster = ensure_cluster(datadir)
    with psycopg.connect(cluster.url(), autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DEMO_DB,)).fetchone():
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DEMO_DB)))
    print(f"local PostGIS: {cluster.url(DEMO_DB)} (data in {datadir})")

    stream = write_sample_stream(state / "sample-stream", hard_cases=True)
    port = free_port()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no request log in the demo output
    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    s3.start()
    try:
        settings = Settings(
            database_url=cluster.url(DEMO_DB),
            s3_endpoint=f"http://127.0.0.1:{port}",
            s3_access_key_id="demo",
            s3_secret_access_key="demo-secret",
        )
        client = make_s3_client(settings)
        client.create_bucket(Bucket=settings.s3_bucket)
        for path in stream:
            client.put_object(
                Bucket=settings.s3_bucket, Key=settings.changes_prefix + path.name, Body=path.read_bytes()
            )
        print(
            f"local S3 endpoint: {settings.s3_endpoint}, {len(stream)} sample change files "
            f"in s3://{settings.s3_bucket}/{settings.changes_prefix}"
        )
        env = {
            **os.environ,
            "DATABASE_URL": settings.database_url or "",
            "RUSTFS_ENDPOINT": settings.s3_endpoint or "",
            "RUSTFS_ACCESS_KEY_ID": "demo",
            "RUSTFS_SECRET_ACCESS_KEY": "demo-secret",
        }
        os.chdir(state)  # no stray .env from the checkout
        run(["-q", "migrate"], env)
        run(["-q", "ingest", "--apply"], env)
        # The demo has no geocoder key: reviewed cluster points stand in for it.
        run(["-q", "gazetteer", "import", str(ROOT / "scripts" / "demo-clusters.csv")], env)
        run(["-q", "map", "--out", str(state / "map.html"), "--window", "last_30_days", *map_options], env)
    finally:
        s3.stop()

    with psycopg.connect(cluster.url(DEMO_DB)) as conn:
        summary = conn.execute("SELECT reporting.fn_tickets_for_map(true) -> 'summary'").fetchone()[0]
        total = conn.execute("SELECT count(*) FROM tickets.inc").fetchone()[0]
    print(f"\ntickets loaded: {total}; open-ticket map summary:")
    print(json.dumps(summary, indent=2))
    print(f"\nmap: {state / 'map.html'} (open it in a browser; no server needed)")
    print("\nRun it again: the second ingest finds nothing new. Stop the database: ./scripts/demo --stop")


if __name__ == "__main__":
    main()
