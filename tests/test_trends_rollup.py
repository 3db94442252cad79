"""tickets.inc_daily_rollup stays equal to a recompute from tickets.inc on every write path.

The rollup is what reporting.fn_inc_trends sums; tests/test_trends.py proves
the sums equal the dashboard. Here each way tickets.inc changes (ingest of
deltas, a late file, a reopened ticket closed again, a closed ticket handed
to another team, a history rebuild, plain updates, deletes and a truncate)
must leave the rollup exactly as tickets.refresh_daily_rollup(NULL) would
compute it afresh.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from fleettickets import history
from fleettickets.ingest import run_ingest
from fleettickets.settings import Settings
from tests.crafted import EAT
from tests.fix_clock import TEST_NOW
from tests.test_trends import SAME, call, dashboard_metrics
from tests.trend_stream import write_file

TODAY = TEST_NOW.astimezone(EAT).date()
ROLLUP = """
SELECT day, cluster_key, created, closed, ARRAY(SELECT v FROM unnest(mttrs) v ORDER BY v),
       compliant, breached, c48_within, c48_breached
  FROM tickets.inc_daily_rollup ORDER BY day, cluster_key NULLS FIRST
"""


def rollup_and_recompute(url: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with psycopg.connect(url) as conn:
        kept = conn.execute(ROLLUP).fetchall()
        conn.execute("SELECT tickets.refresh_daily_rollup(NULL)")
        fresh = conn.execute(ROLLUP).fetchall()
        conn.rollback()
    return kept, fresh


def assert_exact(url: str) -> list[tuple[Any, ...]]:
    kept, fresh = rollup_and_recompute(url)
    assert kept == fresh
    return kept


def row(ticket: str, created: str, closed: str | None, team: str = "East 1", **extra: str) -> dict[str, str]:
    return {
        "ticket_id": ticket,
        "normalized_status": "closed" if closed else "open",
        "is_actionable": "false" if closed else "true",
        "cluster": "Kayole",
        "assigned_team": team,
        "created_at_service": created,
        "first_seen_at": created,
        "mttr": "2.5" if closed else "",
        "sla_status": "Compliant" if closed else "",
        "closed_at": closed or "",
        **extra,
    }


def ingest(url: str, files: list[Path]) -> None:
    assert run_ingest(Settings(database_url=url), apply=True, local_files=files, now=TEST_NOW).ok


def test_every_write_path_keeps_the_rollup_exact(db_url: str, tmp_path: Path) -> None:
    d = [TODAY - timedelta(days=n) for n in range(6, -1, -1)]  # d[0] six days ago ... d[6] today
    at = [datetime(day.year, day.month, day.day, 7, tzinfo=EAT) for day in d]
    ingest(
        db_url,
        [
            write_file(
                tmp_path,
                at[0],
                [
                    row("T1", f"{d[0]} 06:00:00", None),
                    row("T2", f"{d[0]} 06:30:00", None, cluster="Umoja"),
                    row("R1", f"{d[0]} 06:45:00", None),
                    row("C1", f"{d[0]} 05:00:00", f"{d[0]} 06:50:00", cluster=""),
                ],
            ),
            write_file(
                tmp_path,
                at[2],
                [
                    row("T1", f"{d[0]} 06:00:00", f"{d[2]} 06:00:00"),  # a delta closes T1
                    row("R1", f"{d[0]} 06:45:00", f"{d[1]} 23:30:00"),
                    row("N1", f"{d[2]} 01:00:00", None, cluster="UMOJA"),
                ],
            ),
        ],
    )
    assert sum(r[3] for r in assert_exact(db_url)) == 3

    # a late file, stamped before the last one, arrives after it
    ingest(db_url, [write_file(tmp_path, at[1], [row("T2", f"{d[0]} 06:30:00", f"{d[1]} 08:00:00", cluster="Umoja")])])
    assert_exact(db_url)

    # R1 is reopened, then closed again on a later day with another SLA verdict and mttr
    ingest(
        db_url,
        [
            write_file(tmp_path, at[3], [row("R1", f"{d[0]} 06:45:00", None, team="West 9")]),
            write_file(
                tmp_path,
                at[4],
                [row("R1", f"{d[0]} 06:45:00", f"{d[4]} 03:00:00", team="West 9", sla_status="Breached", mttr="70")],
            ),
        ],
    )
    kept = assert_exact(db_url)
    assert not any(r[0] == d[1] and r[1] == "kayole" and r[3] for r in kept)  # R1's first closure left d[1]

    # the closed R1 is handed to another team, and N1's cluster is corrected
    ingest(
        db_url,
        [
            write_file(
                tmp_path,
                at[5],
                [
                    row("R1", f"{d[0]} 06:45:00", f"{d[4]} 03:00:00", team="East 2", sla_status="Breached", mttr="70"),
                    row("N1", f"{d[2]} 01:00:00", None, cluster="Kayole"),
                ],
            )
        ],
    )
    assert_exact(db_url)

    with psycopg.connect(db_url, autocommit=True) as conn:
        history.rebuild(conn, TEST_NOW)
    assert_exact(db_url)

    with psycopg.connect(db_url, autocommit=True) as conn:
        # counted columns changed by hand, a row deleted, then everything truncated
        conn.execute("UPDATE tickets.inc SET raw = raw || '{\"is_actionable\": \"true\"}' WHERE ticket_id = 'C1'")
        assert_exact(db_url)
        conn.execute("DELETE FROM tickets.inc WHERE ticket_id = 'T1'")
        assert_exact(db_url)
        conn.execute("TRUNCATE tickets.inc CASCADE")
    assert assert_exact(db_url) == []


def test_trends_over_the_rollup_equal_the_dashboard_after_the_writes(db_url: str, tmp_path: Path) -> None:
    d = [TODAY - timedelta(days=n) for n in range(3, -1, -1)]
    at = [datetime(day.year, day.month, day.day, 7, tzinfo=EAT) for day in d]
    ingest(
        db_url,
        [
            write_file(tmp_path, at[0], [row("A", f"{d[0]} 01:00:00", None), row("B", f"{d[0]} 02:00:00", None)]),
            write_file(tmp_path, at[1], [row("A", f"{d[0]} 01:00:00", f"{d[1]} 00:30:00")]),
            write_file(
                tmp_path,
                at[2],
                [row("A", f"{d[0]} 01:00:00", None), row("B", f"{d[0]} 02:00:00", f"{d[2]} 05:00:00", mttr="9")],
            ),
            write_file(tmp_path, at[3], [row("A", f"{d[0]} 01:00:00", f"{d[3]} 06:00:00", sla_status="Breached")]),
        ],
    )
    with psycopg.connect(db_url, autocommit=True) as conn:
        for first, last in [(d[0], d[0]), (d[1], d[1]), (d[2], d[3]), (d[0], d[3])]:
            for cluster in (None, "KAYOLE"):
                trend = call(conn, "fn_inc_trends", p_from=first, p_to=last, p_grain="month", p_cluster=cluster)
                (period,) = trend["series"]
                assert {k: period[k] for k in SAME} == dashboard_metrics(conn, first, last, cluster)
    assert_exact(db_url)
