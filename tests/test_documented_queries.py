"""The queries the product's documentation has always given its users, run verbatim through psql.

They run unchanged on a database the real ingest filled (the bundled sample
stream, placed by the demo's reviewed cluster points), as the owner and, where
the reader role may, as a login member of fleettickets_reader. Each answer is
checked against the change files (an independent reading of the feed
contract) and, for the points, the geometry the gazetteer gave the tickets.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from fleettickets import history
from fleettickets.geocoding.gazetteer_file import import_csv
from fleettickets.ingest import run_ingest
from fleettickets.settings import Settings
from fleettickets_dev.localdb import find_bindir
from fleettickets_dev.sample_stream import write_sample_stream
from tests import history_model as model
from tests.geodesic import geodesic_metres, sphere_metres
from tests.stream_tools import PREFIX, expected_state

ROOT = Path(__file__).resolve().parent.parent
LNG, LAT = 36.8219, -1.2921  # the vehicle: Nairobi CBD

DOCUMENTED = """\
-- map payload (GeoJSON + summary, incl. summary.freshness) — what dashboard_api serves
SELECT reporting.fn_tickets_for_map();              -- open-only by default
SELECT reporting.fn_tickets_for_map(p_open_only := false);   -- all geocoded tickets
-- open tickets by SLA (derived) + by cluster — via the view
SELECT sla_state, count(*) FROM tickets.inc_open_sla GROUP BY 1;
SELECT cluster, count(*), round(avg(hours_open),1) AS avg_hrs
FROM tickets.inc_open_sla GROUP BY 1 ORDER BY 2 DESC;
-- closures / creations per day (EAT)
SELECT (closed_at AT TIME ZONE 'Africa/Nairobi')::date AS d, count(*)
FROM tickets.inc WHERE closed_at IS NOT NULL GROUP BY 1 ORDER BY 1 DESC;
-- open-backlog-over-time (one row per EAT day)
SELECT snapshot_date, open_total, open_breached, closed_today
FROM tickets.inc_daily_snapshot ORDER BY snapshot_date DESC;
-- nearest open tickets to a vehicle (lng, lat) — metres, index-accelerated KNN
SELECT ticket_id, cluster, hours_open,
       round(ST_Distance(geog, ST_SetSRID(ST_MakePoint(:lng,:lat),4326)::geography))::int AS metres
FROM tickets.inc_open_sla
ORDER BY geog <-> ST_SetSRID(ST_MakePoint(:lng,:lat),4326)::geography
LIMIT 10;
"""


def statements() -> list[str]:
    """The block cut after each line whose code ends with `;`, comments kept with what follows."""
    found, current = [], []
    for line in DOCUMENTED.splitlines():
        current.append(line)
        if line.split("--", 1)[0].rstrip().endswith(";"):
            found.append("\n".join(current) + "\n")
            current = []
    assert not current and len(found) == 7
    return found


MAP_OPEN, MAP_ALL, BY_SLA, BY_CLUSTER, CLOSURES, BACKLOG, NEAREST = range(7)


def psql_binary() -> str:
    found = shutil.which("psql") or str(find_bindir() / "psql")
    assert Path(found).exists(), "psql is needed to run the documented queries as users do"
    return found


def psql(url: str, script: str) -> subprocess.CompletedProcess[str]:
    """`script` through psql with :lng and :lat bound, unaligned rows of tab-separated fields."""
    return subprocess.run(
        [
            psql_binary(),
            url,
            "-X",
            "-q",
            "-A",
            "-t",
            "-F",
            "\t",
            "-v",
            "ON_ERROR_STOP=1",
            "-v",
            f"lng={LNG}",
            "-v",
            f"lat={LAT}",
            "-f",
            "-",
        ],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PGTZ": "UTC"},
    )


def rows(url: str, statement: str) -> list[list[str]]:
    result = psql(url, statement)
    assert result.returncode == 0, result.stderr
    return [line.split("\t") for line in result.stdout.splitlines()]


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Every hard case of the feed contract, files twelve hours apart so the backlog spans days."""
    return write_sample_stream(tmp_path_factory.mktemp("documented"), hard_cases=True, interval_minutes=720)


@pytest.fixture(scope="module")
def end_of_stream(stream: list[Path]) -> datetime:
    """The instant the backlog is computed at: a day after the last file, whatever today is."""
    return model.file_time(stream[-1]) + timedelta(days=1, hours=3)


@pytest.fixture(scope="module")
def ingested(
    module_db_url: str, stream: list[Path], end_of_stream: datetime, tmp_path_factory: pytest.TempPathFactory
) -> str:
    settings = Settings(database_url=module_db_url)
    assert run_ingest(settings, apply=True, local_files=stream).ok
    import_csv(settings, ROOT / "scripts" / "demo-clusters.csv")
    with psycopg.connect(module_db_url, autocommit=True) as conn:
        history.rebuild(conn, now=end_of_stream)
    return module_db_url


@pytest.fixture(scope="module")
def reader_url(pg_server: str, ingested: str) -> Iterator[str]:
    name = f"analyst_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE fleettickets_reader").format(sql.Identifier(name)))
    parts = urlsplit(ingested)
    yield parts._replace(netloc=f"{name}@{parts.netloc.rsplit('@', 1)[-1]}").geturl()
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def tickets(ingested: str, stream: list[Path]) -> dict[str, dict[str, Any]]:
    """Each ticket as the change files say it ends, plus the point the database placed it at."""
    with psycopg.connect(ingested) as conn:
        points = {
            r[0]: (r[1], r[2])
            for r in conn.execute("SELECT ticket_id, ST_Y(geom), ST_X(geom) FROM tickets.inc WHERE geom IS NOT NULL")
        }
    found = {}
    for ticket_id, record in expected_state(stream).items():
        clock = model.eat_time(record.get("created_at_service")) or model.eat_time(record.get("first_seen_at"))
        found[ticket_id] = {
            "open": model.flag(record.get("is_actionable")) is True,
            "cluster": model.text(record.get("cluster")),
            "clock": clock,
            "closed_at": model.eat_time(record.get("closed_at")),
            "point": points.get(ticket_id),
        }
    return found


def sla_state(clock: datetime | None, now: datetime) -> str:
    if clock is None:
        return "unknown"
    age = now - clock
    return "breached" if age > timedelta(hours=48) else "at_risk" if age >= timedelta(hours=36) else "within"


def test_the_readme_gives_exactly_these_queries() -> None:
    assert "```sql\n" + DOCUMENTED + "```" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("who", ["owner", "reader"])
def test_the_map_payload(ingested: str, reader_url: str, tickets: dict[str, Any], stream: list[Path], who: str) -> None:
    url = ingested if who == "owner" else reader_url
    open_map = json.loads(rows(url, statements()[MAP_OPEN])[0][0])
    everything = json.loads(rows(url, statements()[MAP_ALL])[0][0])
    open_ids = {t for t, v in tickets.items() if v["open"]}
    placed = {t for t, v in tickets.items() if v["point"]}
    assert [f["id"] for f in open_map["features"]] == sorted(open_ids & placed)
    assert [f["id"] for f in everything["features"]] == sorted(placed)
    assert open_map["summary"]["open_only"] is True and everything["summary"]["open_only"] is False
    assert (open_map["summary"]["tickets"], open_map["summary"]["mapped"], open_map["summary"]["unmapped"]) == (
        len(open_ids),
        len(open_ids & placed),
        len(open_ids - placed),
    )
    assert everything["summary"]["tickets"] == len(tickets)
    freshness = open_map["summary"]["freshness"]
    assert freshness["source_max_key"] == PREFIX + "changes/" + stream[-1].name
    assert freshness["source_etag"] == hashlib.md5(stream[-1].read_bytes()).hexdigest()


@pytest.mark.parametrize("who", ["owner", "reader"])
def test_open_tickets_by_sla_state_and_by_cluster(
    ingested: str, reader_url: str, tickets: dict[str, Any], who: str
) -> None:
    url = ingested if who == "owner" else reader_url
    now = datetime.now(model.EAT)  # every clock in the stream is months old: no state is near a boundary
    open_tickets = [v for v in tickets.values() if v["open"]]
    by_state = {state: int(n) for state, n in rows(url, statements()[BY_SLA])}
    assert by_state == dict(Counter(sla_state(v["clock"], now) for v in open_tickets))
    answer = rows(url, statements()[BY_CLUSTER])
    counts = [int(n) for _, n, _ in answer]
    assert counts == sorted(counts, reverse=True)
    model_clusters = Counter(v["cluster"] for v in open_tickets)
    assert {(c or None): int(n) for c, n, _ in answer} == dict(model_clusters)
    for cluster, _, avg in answer:
        hours = [
            (now - v["clock"]).total_seconds() / 3600
            for v in open_tickets
            if v["cluster"] == (cluster or None) and v["clock"]
        ]
        assert (avg == "") == (not hours)
        if hours:
            assert abs(float(avg) - sum(hours) / len(hours)) < 0.2, cluster


def test_closures_per_day_are_for_the_owner_only(ingested: str, reader_url: str, tickets: dict[str, Any]) -> None:
    answer = [(date.fromisoformat(d), int(n)) for d, n in rows(ingested, statements()[CLOSURES])]
    per_day = Counter(v["closed_at"].astimezone(model.EAT).date() for v in tickets.values() if v["closed_at"])
    assert answer == sorted(per_day.items(), reverse=True)
    refused = psql(reader_url, statements()[CLOSURES])
    assert refused.returncode != 0 and "permission denied for table inc" in refused.stderr


@pytest.mark.parametrize("who", ["owner", "reader"])
def test_backlog_over_time(
    ingested: str, reader_url: str, stream: list[Path], end_of_stream: datetime, who: str
) -> None:
    url = ingested if who == "owner" else reader_url
    answer = [(date.fromisoformat(d), int(o), int(b), int(c)) for d, o, b, c in rows(url, statements()[BACKLOG])]
    expected = [
        (r["snapshot_date"], r["open_total"], r["open_breached"], r["closed_today"])
        for r in reversed(model.daily_rows(stream, end_of_stream))
    ]
    assert answer == expected
    assert sum(c for *_, c in answer) > 0 and len(answer) >= 2


@pytest.mark.parametrize("who", ["owner", "reader"])
def test_nearest_open_tickets_to_a_vehicle(ingested: str, reader_url: str, tickets: dict[str, Any], who: str) -> None:
    url = ingested if who == "owner" else reader_url
    answer = rows(url, statements()[NEAREST])
    candidates = {t: v for t, v in tickets.items() if v["open"] and v["point"]}
    # The query orders by <-> (on the sphere) and reports ST_Distance (on the spheroid).
    by_sphere = sorted(candidates, key=lambda t: sphere_metres(LAT, LNG, *candidates[t]["point"]))
    nearest = [round(geodesic_metres(LAT, LNG, *candidates[t]["point"])) for t in by_sphere[:10]]
    assert len(answer) == 10
    for ticket_id, cluster, _, metres in answer:
        assert ticket_id in candidates
        assert (cluster or None) == candidates[ticket_id]["cluster"]
        assert abs(int(metres) - geodesic_metres(LAT, LNG, *candidates[ticket_id]["point"])) <= 0.5 + 1e-6
    assert [int(m) for *_, m in answer] == nearest


def test_the_whole_block_runs_as_one_script(ingested: str) -> None:
    result = psql(ingested, DOCUMENTED)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count('"type": "FeatureCollection"') == 2


def test_the_nearest_query_walks_the_gist_index(ingested: str) -> None:
    plan = psql(ingested, "EXPLAIN " + statements()[NEAREST].split("\n", 1)[1])
    assert plan.returncode == 0, plan.stderr
    # any of the open-ticket GiST indexes on geog (migration 23) can serve the walk
    assert re.search(r"Index Scan using inc_open_\w*geog_idx ", plan.stdout), plan.stdout
    assert "Sort" not in plan.stdout
    assert "Order By: ((geog)::geography <->" in plan.stdout
