"""The trends, team and open rollups stay equal to a recompute on every write path.

tickets.inc_daily_rollup is what reporting.fn_inc_trends sums, and
tickets.inc_team_rollup and inc_open_rollup what reporting.fn_team_closures sums;
tests/test_trends.py proves the sums equal the dashboard. Here each way
tickets.inc or tickets.closure_events changes (ingest of deltas, a late file,
a reopened ticket closed again, a closed ticket handed to another team, a
history rebuild, plain updates, deletes and truncates) must leave the
rollups exactly as tickets.refresh_daily_rollup(NULL),
tickets.refresh_team_rollup(NULL) and a count of the open tickets would
compute them afresh, and both
functions must answer exactly as the bodies that recounted tickets.inc did.
The mttr median and p90 read from the rollups' buckets must be
percentile_cont's, bit for bit.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from fleettickets import history
from fleettickets.ingest import run_ingest
from fleettickets.settings import Settings
from tests.crafted import EAT
from tests.fix_clock import TEST_NOW
from tests.migration_text import function_as_created
from tests.test_history import function_calls
from tests.test_trends import SAME, call, dashboard_metrics
from tests.trend_stream import write_file

TODAY = TEST_NOW.astimezone(EAT).date()
ROLLUP = """
SELECT day, cluster_key, created, closed, ARRAY(SELECT v FROM unnest(mttrs) v ORDER BY v),
       compliant, breached, c48_within, c48_breached
  FROM tickets.inc_daily_rollup ORDER BY day, cluster_key NULLS FIRST
"""
DAILY_MTTR = "SELECT day, mttrs, mttr_buckets, mttr_counts FROM tickets.inc_daily_mttr ORDER BY day"
TEAM_ROLLUP = """
SELECT day, cluster_key, team, closed, mttrs, mttr_buckets, mttr_counts, compliant, breached, c48_within, c48_breached
  FROM tickets.inc_team_rollup ORDER BY day, cluster_key NULLS FIRST, team NULLS FIRST
"""
OPEN_ROLLUP = """
SELECT cluster_key, team, clock_day, open FROM tickets.inc_open_rollup
 ORDER BY cluster_key NULLS FIRST, team NULLS FIRST, clock_day NULLS FIRST
"""
CREDIT = "SELECT ticket_id, assigned_team FROM tickets.closure_credit ORDER BY ticket_id"
CREDIT_RECOUNT = """
SELECT DISTINCT ON (ticket_id) ticket_id, assigned_team FROM tickets.closure_events ORDER BY ticket_id, observed_at DESC
"""
OPEN_RECOUNT = """
SELECT lower(cluster), nullif(btrim(assigned_team), ''), tickets.eat_day(coalesce(created_at_service, first_seen_at)),
       count(*)
  FROM tickets.inc WHERE is_actionable
 GROUP BY 1, 2, 3 ORDER BY 1 NULLS FIRST, 2 NULLS FIRST, 3 NULLS FIRST
"""
# The bodies that recounted tickets.inc and closure_events on every call.
EARLIER_BODIES = (
    function_as_created("31_trends_and_team_closures.sql", "reporting.fn_team_closures", "pg_temp.team_closures_31"),
    function_as_created("37_trends_daily_rollup.sql", "reporting.fn_inc_trends", "pg_temp.trends_37"),
)


Rows = list[tuple[Any, ...]]


def rollup_and_recompute(url: str) -> tuple[tuple[Rows, ...], tuple[Rows, ...]]:
    with psycopg.connect(url) as conn:
        kept = tuple(conn.execute(q).fetchall() for q in (ROLLUP, DAILY_MTTR, TEAM_ROLLUP, OPEN_ROLLUP, CREDIT))
        conn.execute("SELECT tickets.refresh_daily_rollup(NULL), tickets.refresh_team_rollup(NULL)")
        fresh = tuple(
            conn.execute(q).fetchall() for q in (ROLLUP, DAILY_MTTR, TEAM_ROLLUP, OPEN_RECOUNT, CREDIT_RECOUNT)
        )
        conn.rollback()
    return kept, fresh


def assert_exact(url: str) -> Rows:
    """The rollups equal a recompute, took every change without one, and both functions answer as before.

    Returns the trends rollup's rows.
    """
    kept, fresh = rollup_and_recompute(url)
    assert kept == fresh
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT rollup::text, days FROM tickets.rollup_repairs").fetchall() == []
    answers_as_before(url)
    return kept[0]


def answers_as_before(url: str) -> None:
    """Both functions, over ranges and clusters around the written days, answer as the earlier bodies."""
    with psycopg.connect(url, autocommit=True) as conn:
        for body in EARLIER_BODIES:
            conn.execute(body)
        for first, last, grain in [
            (TODAY - timedelta(days=8), TODAY, "day"),
            (TODAY - timedelta(days=6), TODAY - timedelta(days=4), "week"),
            (TODAY - timedelta(days=30), TODAY, "month"),
        ]:
            # open tickets breach 48 hours after their clock: instants whose
            # cut-off falls inside the written days, as well as now
            instants = (
                TEST_NOW,
                TEST_NOW - timedelta(days=2, hours=1),
                TEST_NOW - timedelta(days=4, hours=1, minutes=15),
            )
            for cluster, now in [(c, n) for c in (None, "KAYOLE", " umoja ", "nowhere") for n in instants]:
                args = {"p_from": first, "p_to": last, "p_cluster": cluster, "p_now": now}
                named = ", ".join(f"{k} => %({k})s" for k in args)
                new, old = conn.execute(
                    f"SELECT reporting.fn_team_closures({named})::text, pg_temp.team_closures_31({named})::text",
                    args,
                ).fetchone()
                assert new == old, args
                new, old = conn.execute(
                    f"SELECT reporting.fn_inc_trends({named}, p_grain => %(grain)s)::text, "
                    f"pg_temp.trends_37({named}, p_grain => %(grain)s)::text",
                    args | {"grain": grain},
                ).fetchone()
                assert new == old, args


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
        # the credit changed by hand: an event's team, an event removed, every event gone
        conn.execute("UPDATE tickets.closure_events SET assigned_team = ' north 4' WHERE ticket_id = 'R1'")
        assert ("north 4", 1) in [(r[2], r[3]) for r in conn.execute(TEAM_ROLLUP)]
        assert_exact(db_url)
        conn.execute("DELETE FROM tickets.closure_events WHERE ticket_id = 'T2'")
        assert_exact(db_url)
        conn.execute("UPDATE tickets.inc SET raw = raw || '{\"assigned_team\": \"South 3\"}' WHERE ticket_id = 'T2'")
        assert_exact(db_url)
        conn.execute("TRUNCATE tickets.closure_events")
        assert_exact(db_url)
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


# --- the percentiles from buckets ---------------------------------------------------

PARTS = """
SELECT array_agg(ROW(p.sorted, h.buckets, h.counts)::tickets.mttr_part)
  FROM unnest(%(parts)s::text[]) AS t(part),
       LATERAL (SELECT nullif(ARRAY(SELECT v FROM unnest(t.part::integer[]) v ORDER BY v), '{}') AS sorted) AS p,
       LATERAL tickets.mttr_histogram(p.sorted) AS h
"""


@hypothesis_settings(max_examples=150, deadline=None, database=None)
@given(
    parts=st.lists(
        st.one_of(
            st.lists(st.integers(0, 12), max_size=9),  # ties in the small one-minute buckets
            st.lists(st.integers(0, 5_256_000), max_size=40),  # the whole range, the widest buckets
            st.lists(st.sampled_from((59, 60, 61, 432, 519, 520, 4641)), max_size=30),  # on and beside bounds
        ),
        max_size=6,
    )
)
def test_percentiles_from_buckets_are_percentile_conts_bit_for_bit(module_db_url: str, parts: list[list[int]]) -> None:
    texts = ["{" + ",".join(map(str, part)) + "}" for part in parts]
    with psycopg.connect(module_db_url, autocommit=True) as conn:
        expected, got, summary, summary_of = conn.execute(
            f"""
            WITH parts AS ({PARTS}), everything AS (
                SELECT array_agg(v) AS mttrs FROM unnest(%(parts)s::text[]) AS t(part), unnest(t.part::integer[]) v)
            SELECT (SELECT percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY v) FROM everything, unnest(mttrs) v),
                   reporting.mttr_percentiles_of((SELECT * FROM parts), p_sort_up_to => 0),
                   reporting.mttr_summary((SELECT mttrs FROM everything))::text,
                   reporting.mttr_summary_of((SELECT * FROM parts))::text
            """,
            {"parts": texts},
        ).fetchone()
    assert [float(x).hex() for x in expected or []] == [float(x).hex() for x in got or []]
    assert summary == summary_of  # the few values here are sorted, as percentile_cont does


# Statements against tickets.inc and tickets.closure_events, each touching
# several rows, with the values the rollups count by drawn from a small set
# so that keys, mttr values and credits collide.
STAMPS = [f"{TODAY - timedelta(days=n)} {h:02d}:{m:02d}:00" for n in range(3) for h, m in ((0, 0), (2, 59), (21, 0))]
TICKET_IDS = [f"P{i}" for i in range(5)]
TEAMS = ["East 1", " east 1", "West 9", "", None]
ticket_raw = st.fixed_dictionaries(
    {
        "created_at_service": st.sampled_from([*STAMPS, ""]),
        "first_seen_at": st.sampled_from(STAMPS[:3]),
        "closed_at": st.sampled_from([*STAMPS, ""]),
        "is_actionable": st.sampled_from(["true", "false", ""]),
        "cluster": st.sampled_from(["Kayole", "kayole", "Umoja", ""]),
        "assigned_team": st.sampled_from(TEAMS),
        "mttr": st.sampled_from(["", "2.5", "0.1", "30", "2.5"]),
        "sla_status": st.sampled_from(["Compliant", "breached", "", "Pending"]),
    }
)
some_tickets = st.lists(st.sampled_from(TICKET_IDS), min_size=1, max_size=4, unique=True)
event = st.tuples(st.sampled_from(TICKET_IDS), st.integers(0, 3), st.sampled_from(TEAMS))
statement = st.one_of(
    st.tuples(st.just("upsert"), st.lists(st.tuples(st.sampled_from(TICKET_IDS), ticket_raw), min_size=1, max_size=4)),
    st.tuples(st.just("delete"), some_tickets),
    st.tuples(st.just("team"), st.tuples(some_tickets, st.sampled_from(TEAMS))),
    st.tuples(st.just("events"), st.tuples(some_tickets, st.lists(event, max_size=5))),
    st.tuples(st.just("drop_events"), some_tickets),
    st.tuples(st.just("event_team"), st.tuples(some_tickets, st.sampled_from(TEAMS))),
)


def run_statement(conn: psycopg.Connection[Any], kind: str, arg: Any) -> None:
    if kind == "upsert":
        rows = dict(arg)  # one row per key, as ON CONFLICT needs
        conn.execute(
            "INSERT INTO tickets.inc (ticket_id, raw) SELECT t, r FROM unnest(%s::text[], %s::jsonb[]) AS u(t, r) "
            "ON CONFLICT (ticket_id) DO UPDATE SET raw = excluded.raw",
            (list(rows), [psycopg.types.json.Jsonb(r) for r in rows.values()]),
        )
    elif kind == "delete":
        conn.execute("DELETE FROM tickets.inc WHERE ticket_id = ANY (%s)", (arg,))
    elif kind == "team":
        conn.execute(
            "UPDATE tickets.inc SET raw = raw || jsonb_build_object('assigned_team', %s::text) "
            "WHERE ticket_id = ANY (%s)",
            (arg[1], arg[0]),
        )
    elif kind == "events":
        # one statement that deletes some tickets' events and writes others
        # (both statement triggers fire after all of it, as in derive_closures)
        dropped, written = arg
        written = list({(t, n): team for t, n, team in written}.items())
        conn.execute(
            "WITH gone AS (DELETE FROM tickets.closure_events WHERE ticket_id = ANY (%s)) "
            "INSERT INTO tickets.closure_events (ticket_id, observed_at, source_key, first_observation, assigned_team) "
            "SELECT t, %s::timestamptz + n * interval '1 hour', 'k', true, team "
            "  FROM unnest(%s::text[], %s::integer[], %s::text[]) AS u(t, n, team) "
            "ON CONFLICT (ticket_id, observed_at) DO UPDATE SET assigned_team = excluded.assigned_team",
            (dropped, TEST_NOW, [k[0] for k, _ in written], [k[1] for k, _ in written], [t for _, t in written]),
        )
    elif kind == "drop_events":
        conn.execute("DELETE FROM tickets.closure_events WHERE ticket_id = ANY (%s)", (arg,))
    else:
        conn.execute(
            "UPDATE tickets.closure_events SET assigned_team = %s WHERE ticket_id = ANY (%s)", (arg[1], arg[0])
        )


@hypothesis_settings(max_examples=60, deadline=None, database=None)
@given(statements=st.lists(statement, min_size=1, max_size=8))
def test_any_statements_keep_the_rollups_equal_to_a_recompute(
    module_db_url: str, statements: list[tuple[str, Any]]
) -> None:
    """The rollups' incremental changes against a full recompute, after any statements."""
    with psycopg.connect(module_db_url, autocommit=True) as conn:
        conn.execute("TRUNCATE tickets.inc, tickets.closure_events, tickets.rollup_repairs CASCADE")
        for kind, arg in statements:
            run_statement(conn, kind, arg)
    kept, fresh = rollup_and_recompute(module_db_url)
    assert kept == fresh
    with psycopg.connect(module_db_url) as conn:
        assert conn.execute("SELECT count(*) FROM tickets.rollup_repairs").fetchone() == (0,)


@pytest.mark.parametrize("stray_credits", [False, True], ids=["empty credits", "credits without events"])
def test_a_first_capture_credits_each_closure_to_its_own_team(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stray_credits: bool
) -> None:
    """A first load's capture writes the credits from its events, without the general sync.

    A credit left without an event (by hand) is dropped: the rollup built by
    the load counts that closure under the ticket's own team, as its event does.
    """
    monkeypatch.setattr("fleettickets.ingest.capture", lambda conn, now: None)
    day = TODAY - timedelta(days=3)
    if stray_credits:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("INSERT INTO tickets.closure_credit VALUES ('C2', 'Ghost 7'), ('X9', 'Nobody')")
    closed = [
        row("C1", f"{day} 05:00:00", f"{day} 06:00:00"),
        row("C2", f"{day} 04:00:00", f"{day} 06:10:00", team=" West 2 "),
        row("C3", f"{day} 03:00:00", f"{day} 06:20:00", team=""),
        row("C4", f"{day} 02:00:00", f"{day} 06:30:00", team="East 1", cluster="Umoja"),
    ]
    ingest(
        db_url,
        [
            write_file(
                tmp_path,
                datetime(day.year, day.month, day.day, 7, tzinfo=EAT),
                [*closed, row("O1", f"{day} 05:30:00", None)],
            )
        ],
    )
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("SET track_functions = 'all'")
        with conn.transaction():
            first_loads = function_calls(conn, "tickets.first_load_closures(timestamptz)")
            syncs = function_calls(conn, "tickets.sync_closure_credit(text[])")
            captured = history.capture(conn, now=TEST_NOW)
            assert function_calls(conn, "tickets.first_load_closures(timestamptz)") == first_loads + 1
            assert function_calls(conn, "tickets.sync_closure_credit(text[])") == syncs
        credits = conn.execute(CREDIT).fetchall()
    assert captured.closures_added == len(closed)
    assert credits == [("C1", "East 1"), ("C2", "West 2"), ("C3", None), ("C4", "East 1")]
    assert_exact(db_url)


def test_a_rollup_out_of_step_is_recomputed_and_recorded(db_url: str, tmp_path: Path) -> None:
    d = [TODAY - timedelta(days=n) for n in range(2, -1, -1)]
    at = [datetime(day.year, day.month, day.day, 7, tzinfo=EAT) for day in d]
    ingest(db_url, [write_file(tmp_path, at[0], [row("A1", f"{d[0]} 05:00:00", f"{d[0]} 06:00:00")])])
    assert_exact(db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        # somebody empties the day's rows by hand; a delta then reopens A1
        conn.execute("DELETE FROM tickets.inc_daily_rollup WHERE day = %s", (d[0],))
        conn.execute("UPDATE tickets.inc_team_rollup SET mttrs = '{1}' WHERE day = %s", (d[0],))
    ingest(db_url, [write_file(tmp_path, at[1], [row("A1", f"{d[0]} 05:00:00", None)])])
    kept, fresh = rollup_and_recompute(db_url)
    assert kept == fresh
    with psycopg.connect(db_url) as conn:
        repairs = conn.execute("SELECT rollup::text, days FROM tickets.rollup_repairs ORDER BY rollup::text").fetchall()
    assert repairs == [("tickets.inc_daily_rollup", [d[0]]), ("tickets.inc_team_rollup", [d[0]])]


@hypothesis_settings(max_examples=200, deadline=None, database=None)
@given(
    held=st.lists(st.integers(0, 20), max_size=30),
    added=st.lists(st.integers(0, 20), max_size=8),
    removed=st.lists(st.integers(0, 20), max_size=8),
    splice_up_to=st.sampled_from([0, 256]),  # one sort of the whole, or splices
)
def test_a_sorted_mttr_array_merges_as_a_multiset(
    module_db_url: str, held: list[int], added: list[int], removed: list[int], splice_up_to: int
) -> None:
    """tickets.mttrs_merged against Counter arithmetic: values not held are not taken away."""
    expected = sorted((Counter(held) - Counter(removed) + Counter(added)).elements()) or None
    with psycopg.connect(module_db_url, autocommit=True) as conn:
        (got,) = conn.execute(
            "SELECT tickets.mttrs_merged(%s, %s, %s, %s)",
            (
                sorted(held) or None,
                sorted(added) or None,
                sorted(removed) or None,
                splice_up_to,
            ),
        ).fetchone()
    assert got == expected


def test_two_writers_at_once_both_count(db_url: str, tmp_path: Path) -> None:
    """A second transaction's trigger waits for the first to commit, then merges into what it wrote."""
    d0 = TODAY - timedelta(days=1)
    at = datetime(d0.year, d0.month, d0.day, 7, tzinfo=EAT)
    ingest(db_url, [write_file(tmp_path, at, [row("W1", f"{d0} 05:00:00", None), row("W2", f"{d0} 05:10:00", None)])])
    close = (
        "UPDATE tickets.inc SET raw = raw || jsonb_build_object('closed_at', %s::text, 'is_actionable', 'false', "
        "'mttr', %s::text, 'sla_status', 'Compliant') WHERE ticket_id = %s"
    )
    with psycopg.connect(db_url) as first, psycopg.connect(db_url) as second:
        first.execute(close, (f"{d0} 06:00:00", "1.5", "W1"))
        done = threading.Event()

        def second_writer() -> None:
            second.execute(close, (f"{d0} 06:30:00", "3", "W2"))
            second.commit()
            done.set()

        writer = threading.Thread(target=second_writer)
        writer.start()
        assert not done.wait(1.0)  # it waits for the first to commit
        first.commit()
        writer.join(timeout=60)
        assert done.is_set()
    kept = assert_exact(db_url)
    assert [(r[2], r[3], r[4]) for r in kept if r[0] == d0] == [(2, 2, [90, 180])]
