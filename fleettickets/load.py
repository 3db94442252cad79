"""Loading one change file: COPY its clean rows into a staging table, then one set-based merge."""

from __future__ import annotations

import csv
import io
import itertools
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from fleettickets import faults
from fleettickets.clean import CleanRow, FileCounts, read_change_file

logger = logging.getLogger(__name__)

# Staging holds the clean rows as text columns (c0, c1, ... in the file's
# column order) and builds the jsonb in SQL: COPY of plain text plus
# jsonb_build_object is far cheaper than serialising JSON per row in Python.
# The later row of a ticket within one file wins (highest line); winners are
# picked on (ticket, line) alone so the wide rows are never sorted.
#
# Into an empty tickets.inc (a first baseline, a replay into a fresh
# database) every row is new: one INSERT, its rows also appended to
# tickets.inc_versions by the same statement from what RETURNING hands back.
# The rows are placed by joining tickets.geometry_of, which PostgreSQL
# inlines (gazetteer lookups as hash joins), while the per-row geometry
# trigger is off (see _placed_by_the_statement); OFFSET 0 builds each row's
# jsonb once instead of once per use.
FIRST_LOAD_SQL = """
WITH winners AS MATERIALIZED (
    SELECT max(line) AS line FROM ingest_stage GROUP BY {ticket}
), added AS (
    INSERT INTO tickets.inc (ticket_id, raw, source_file_ts, source_key, geom, geo_source)
    SELECT w.ticket_id, w.raw, {file_ts}, {file_key}, g.geom, g.geo_source
      FROM (SELECT {ticket} AS ticket_id, {raw} AS raw
              FROM ingest_stage JOIN winners USING (line) OFFSET 0) AS w
     CROSS JOIN LATERAL tickets.geometry_of(w.raw) AS g
    RETURNING ticket_id, raw
), versions AS (
    INSERT INTO tickets.inc_versions (ticket_id, valid_from, source_key, raw)
    SELECT ticket_id, {file_ts}, {file_key}, raw FROM added
    ON CONFLICT (ticket_id, valid_from) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM winners), count(*), 0, 0, (SELECT count(*) FROM versions)
  FROM added
"""
# Into a table that holds tickets, the file's winners are first put in a
# table of their own (ticket_id, raw, known), so that one statement can reach the
# tickets they name by primary key: `= ANY` of their keys makes an index scan
# of inc_pkey whatever the planner thinks of the table's size (a join let it
# read all of tickets.inc to update 2,000 rows). Each winner takes one path,
# all in one statement (one snapshot, so the paths cannot overlap):
# - merged: the late-file guard passes (the current version came from an
#   older file). A changed row gets ingested_at = now() and a new version; an
#   identical row only takes the newer file's timestamp (so a later late file
#   cannot roll it back) and keeps its ingested_at, which is how RETURNING
#   tells the two apart;
# - added: a ticket not seen before, and its first version. Which tickets
#   are known is settled as the winners are picked, by primary key, before
#   anything is written: probed after the update, the key's index led to
#   each updated row's old and new tuple (20,000 rows: 27,000 page reads);
# - stale: the guard fails (counted by the caller, see STALE_VERSIONS_SQL).
# INSERT ... ON CONFLICT DO UPDATE did this in one pass, but fired the
# geometry trigger of INSERT (every lookup) for each of the existing tickets.
# OFFSET 0 keeps `known` a probe of the primary key per winner: without it
# the planner may turn EXISTS into a hash of every ticket's key, a full read
# of tickets.inc (200,000 tickets: 25,000 pages, 0.3 s on a busy machine)
# to settle 20,000 winners; it trusts its guess of the unanalysed staging
# table's rows over the table's real size.
INCOMING_SQL = """
CREATE TEMP TABLE ingest_incoming ON COMMIT DROP AS
SELECT w.ticket_id, w.raw,
       EXISTS (SELECT FROM tickets.inc t WHERE t.ticket_id = w.ticket_id OFFSET 0) AS known
  FROM (SELECT {ticket} AS ticket_id, {raw} AS raw
          FROM ingest_stage
         WHERE line IN (SELECT max(line) FROM ingest_stage GROUP BY {ticket})) AS w
"""
DELTA_MERGE_SQL = """
WITH keys AS MATERIALIZED (
    SELECT array_agg(ticket_id) AS ticket_ids FROM ingest_incoming
), merged AS (
    UPDATE tickets.inc AS t
       SET raw = i.raw,
           ingested_at = CASE WHEN t.raw IS DISTINCT FROM i.raw THEN now() ELSE t.ingested_at END,
           source_file_ts = {file_ts}, source_key = {file_key}
      FROM ingest_incoming i
     WHERE t.ticket_id = ANY ((SELECT ticket_ids FROM keys)::text[]) AND t.ticket_id = i.ticket_id
       AND (t.source_file_ts IS NULL OR t.source_file_ts < {file_ts})
    RETURNING t.ticket_id, t.raw, t.ingested_at = now() AS changed
), added AS (
    INSERT INTO tickets.inc (ticket_id, raw, source_file_ts, source_key)
    SELECT i.ticket_id, i.raw, {file_ts}, {file_key}
      FROM ingest_incoming i
     WHERE NOT i.known
    RETURNING ticket_id, raw
), versions AS (
    INSERT INTO tickets.inc_versions (ticket_id, valid_from, source_key, raw)
    SELECT ticket_id, {file_ts}, {file_key}, raw FROM merged WHERE changed
    UNION ALL
    SELECT ticket_id, {file_ts}, {file_key}, raw FROM added
    ON CONFLICT (ticket_id, valid_from) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM ingest_incoming), (SELECT count(*) FROM added),
       (SELECT count(*) FILTER (WHERE changed) FROM merged),
       (SELECT count(*) FILTER (WHERE NOT changed) FROM merged),
       (SELECT count(*) FROM versions)
"""
# Rows of a late file that lost the guard are still real versions, stamped
# with their own file time: recorded when they differ from the version just
# before that time, so point-in-time reads see them. Run only when a file has
# such rows (a late file or a replay), so the common path pays nothing.
STALE_VERSIONS_SQL = """
INSERT INTO tickets.inc_versions (ticket_id, valid_from, source_key, raw)
SELECT l.ticket_id, {file_ts}, {file_key}, l.raw
  FROM ingest_incoming l
  JOIN tickets.inc t ON t.ticket_id = l.ticket_id AND t.source_file_ts > {file_ts}
 WHERE l.raw IS DISTINCT FROM (
        SELECT p.raw FROM tickets.inc_versions p
         WHERE p.ticket_id = l.ticket_id AND p.valid_from < {file_ts}
         ORDER BY p.valid_from DESC LIMIT 1)
ON CONFLICT (ticket_id, valid_from) DO NOTHING
"""
# Secondary indexes of a table, with what recreates them: the indexes that no
# constraint owns (ON CONFLICT needs the primary keys, so those stay).
SECONDARY_INDEXES_SQL = """
SELECT n.nspname, c.relname, pg_get_indexdef(i.indexrelid)
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE i.indrelid = %s::regclass
   AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
 ORDER BY c.relname
"""
# Tables whose secondary indexes a load into an empty table builds afterwards.
BULK_BUILT_TABLES = ("tickets.inc", "tickets.inc_versions")

# jsonb_build_object takes at most 100 arguments: build 40 columns at a time.
_PAIRS_PER_CALL = 40
_COPY_BATCH_BYTES = 1 << 20

LEDGER_SQL = """
INSERT INTO tickets.ingest_files (
    file_key, file_ts, etag, size_bytes, late, rows_read, rows_inserted, rows_updated,
    rows_unchanged, rows_stale, duplicates_in_file, alarms_dropped, sentinels_dropped,
    rows_rejected, rejections, read_load_seconds, merge_seconds, run_id)
VALUES (%(file_key)s, %(file_ts)s, %(etag)s, %(size_bytes)s, %(late)s, %(rows_read)s,
    %(inserted)s, %(updated)s, %(unchanged)s, %(stale)s, %(duplicates)s,
    %(alarms_dropped)s, %(sentinels_dropped)s, %(rejected)s, %(rejections)s,
    %(read_load_seconds)s, %(merge_seconds)s, %(run_id)s)
"""

# The watermark only moves forward: a late file is recorded but does not pull it back.
# source_etag is the ETag of the file at source_max_key, a name readers already use.
WATERMARK_SQL = """
INSERT INTO tickets.import_meta AS m (dataset, metadata, updated_at)
VALUES ('inc', jsonb_build_object(
            'source_max_key', %(file_key)s::text, 'source_max_ts', %(file_ts_iso)s::text,
            'source_etag', %(etag)s::text,
            'last_ingest_at', now(), 'last_file_key', %(file_key)s::text), now())
ON CONFLICT (dataset) DO UPDATE
   SET metadata = m.metadata
           || jsonb_build_object('last_ingest_at', now(), 'last_file_key', %(file_key)s::text)
           || CASE WHEN (m.metadata ->> 'source_max_ts') IS NULL
                     OR (m.metadata ->> 'source_max_ts')::timestamptz < %(file_ts)s
                   THEN jsonb_build_object('source_max_key', %(file_key)s::text,
                                           'source_max_ts', %(file_ts_iso)s::text,
                                           'source_etag', %(etag)s::text)
                   ELSE '{}'::jsonb END,
       updated_at = now()
"""


@dataclass
class FileResult:
    """What one file did (or, in a dry run, would do) to tickets.inc."""

    file_key: str
    file_ts: datetime
    etag: str
    size_bytes: int
    late: bool
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0
    versions: int = 0
    duplicates: int = 0
    alarms_dropped: int = 0
    sentinels_dropped: int = 0
    rejected: int = 0
    rejections: list[tuple[int, str]] | None = None
    read_load_seconds: float = 0.0
    merge_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["file_ts"] = self.file_ts.isoformat()
        data["rejections"] = [list(r) for r in self.rejections or []]
        return data


def prepare_session(conn: psycopg.Connection) -> None:
    """Session settings for loading: staging lives in temp buffers, dedup hashes in memory.

    Must run before the session first touches a temp table (temp_buffers is
    fixed from then on). Memory is only taken as a file needs it.
    """
    conn.execute("SET temp_buffers = '256MB'")
    conn.execute("SET work_mem = '64MB'")


def load_change_file(
    conn: psycopg.Connection,
    stream: Any,
    result: FileResult,
    run_id: str,
    source: str | None = None,
) -> FileResult:
    """Stage, merge and record one file inside the caller's transaction.

    ``source`` names the file in messages (a local path); the ledger key otherwise.
    """
    counts = FileCounts()
    started = time.monotonic()
    rows = counts.tally(read_change_file(stream, source or result.file_key))
    first = next(rows, None)
    distinct = 0
    if first is not None:
        columns = list(first.record)
        _create_stage(conn, len(columns))
        _copy_rows(conn, first, rows, len(columns))
        staged = time.monotonic()
        empty = _empty_tables(conn, BULK_BUILT_TABLES)
        if "tickets.inc" in empty:
            with _rollups_built_after(conn):
                with _indexes_built_after(conn, empty), _placed_by_the_statement(conn):
                    merged = conn.execute(_statement(FIRST_LOAD_SQL, columns, result)).fetchone()
                # The new rows have no column statistics yet: until autovacuum
                # got round to them, the rollups' build, the history capture in
                # this transaction and the next runs would be planned on default
                # guesses (a sequential scan of every version to learn that
                # nothing is new).
                conn.execute("ANALYZE tickets.inc, tickets.inc_versions")
        else:
            conn.execute(_statement(INCOMING_SQL, columns, result))
            with _indexes_built_after(conn, empty):
                merged = conn.execute(_statement(DELTA_MERGE_SQL, columns, result)).fetchone()
        assert merged is not None
        distinct, result.inserted, result.updated, result.unchanged, result.versions = merged
        if distinct > result.inserted + result.updated + result.unchanged:
            stale = conn.execute(_statement(STALE_VERSIONS_SQL, columns, result))
            result.versions += stale.rowcount
        # Dropped now, not at commit: a dry run loads every file in one transaction.
        conn.execute("DROP TABLE IF EXISTS ingest_stage, ingest_incoming")
    else:
        staged = time.monotonic()
    result.stale = distinct - result.inserted - result.updated - result.unchanged
    result.duplicates = counts.clean - distinct
    result.rows_read = counts.rows_read
    result.alarms_dropped = counts.dropped_alarms
    result.sentinels_dropped = counts.dropped_sentinels
    result.rejected = counts.rejected
    result.rejections = counts.rejections
    result.read_load_seconds = round(staged - started, 3)
    result.merge_seconds = round(time.monotonic() - staged, 3)
    _log_rejections(result, counts)
    record_file(conn, result, run_id)
    return result


def _empty_tables(conn: psycopg.Connection, tables: tuple[str, ...]) -> list[str]:
    empty = sql.SQL("SELECT NOT EXISTS (SELECT FROM {})")
    return [t for t in tables if conn.execute(empty.format(sql.Identifier(*t.split(".")))).fetchone() == (True,)]


@contextmanager
def _indexes_built_after(conn: psycopg.Connection, tables: list[str]) -> Iterator[None]:
    """Drop the tables' secondary indexes for the block and build them again after it.

    For a load into an empty table (a first baseline, a replay): building an
    index from sorted rows is several times cheaper than inserting a million
    rows one at a time into each index. Both happen in the caller's
    transaction, so a failure or a crash rolls the drop back with the rows.
    The tables are locked exclusively until commit, which costs nothing while
    they are empty and nobody has anything to read in them.
    """
    indexes = [row for table in tables for row in conn.execute(SECONDARY_INDEXES_SQL, (table,))]
    for schema, name, _ in indexes:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, name)))
    yield
    if indexes:
        conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
    for _, _, definition in indexes:
        conn.execute(sql.SQL(definition))


@contextmanager
def _trigger_off(conn: psycopg.Connection, trigger: str) -> Iterator[None]:
    """Switch a trigger on tickets.inc off for the block, in the caller's transaction.

    ALTER TABLE locks the table exclusively until commit, which a first load
    into an empty table already does; a failure rolls the switch back with
    the rows.
    """
    conn.execute(sql.SQL("ALTER TABLE tickets.inc DISABLE TRIGGER {}").format(sql.Identifier(trigger)))
    yield
    conn.execute(sql.SQL("ALTER TABLE tickets.inc ENABLE TRIGGER {}").format(sql.Identifier(trigger)))


@contextmanager
def _placed_by_the_statement(conn: psycopg.Connection) -> Iterator[None]:
    """Switch the per-row geometry trigger off while a first load places its rows itself.

    FIRST_LOAD_SQL writes each row's geom and geo_source from
    tickets.geometry_of, the rule the trigger applies through
    tickets.resolve_geometry, so the trigger would only work them out again,
    one lookup at a time.
    """
    with _trigger_off(conn, "inc_resolve_geometry_insert"):
        yield


@contextmanager
def _rollups_built_after(conn: psycopg.Connection) -> Iterator[None]:
    """Switch the rollups' insert trigger off for a first load and build them once after it.

    The trigger shifts the rollups by each statement's rows, which it reads
    from a transition table: for a first load that is the whole file written
    aside once more and grouped, where one pass over the loaded table (with
    its indexes rebuilt) does the same work once.
    """
    with _trigger_off(conn, "inc_rollup_insert"):
        yield
    conn.execute("SELECT tickets.rebuild_rollups()")


def _create_stage(conn: psycopg.Connection, width: int) -> None:
    columns = sql.SQL(", ").join(sql.SQL("c{} text").format(sql.SQL(str(i))) for i in range(width))
    conn.execute(sql.SQL("CREATE TEMP TABLE ingest_stage (line integer NOT NULL, {}) ON COMMIT DROP").format(columns))


def _copy_rows(conn: psycopg.Connection, first: CleanRow, rest: Iterator[CleanRow], width: int) -> None:
    """COPY the rows as CSV; every row of a file has the same columns in the same order.

    Blank values were made None by cleaning and None is written as an unquoted
    empty field, which COPY's CSV format reads as NULL. Lines end in CRLF
    because the csv module quotes only the line terminator's characters: with
    a bare LF, a value holding a lone CR went out unquoted and COPY refused
    the file.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    with conn.cursor().copy("COPY ingest_stage FROM STDIN (FORMAT csv)") as copy:
        for row in itertools.chain((first,), rest):
            values = row.record.values()
            if len(values) != width:  # clean.py guarantees this; a change there must not corrupt data
                raise AssertionError(f"{row.line}: {len(values)} columns, expected {width}")
            writer.writerow((row.line, *values))
            if buffer.tell() >= _COPY_BATCH_BYTES:
                _send(copy, buffer)
        _send(copy, buffer)


def _send(copy: psycopg.Copy, buffer: io.StringIO) -> None:
    copy.write(buffer.getvalue())
    buffer.seek(0)
    buffer.truncate()
    faults.crash_point("mid-copy")


def _statement(template: str, columns: list[str], result: FileResult) -> sql.Composed:
    """A merge statement complete with its values, for a file's staged columns.

    Column names are data (a header may say ``SLA %`` or ``%(file_key)s``), so
    the statement carries every value as a literal and is sent without
    parameters: psycopg then leaves each ``%`` alone instead of reading it as a
    placeholder.
    """
    calls = []
    for start in range(0, len(columns), _PAIRS_PER_CALL):
        pairs = sql.SQL(", ").join(
            sql.SQL("{}, c{}").format(sql.Literal(name), sql.SQL(str(start + i)))
            for i, name in enumerate(columns[start : start + _PAIRS_PER_CALL])
        )
        calls.append(sql.SQL("jsonb_build_object({})").format(pairs))
    ticket = sql.SQL("c{}").format(sql.SQL(str(columns.index("ticket_id"))))
    return sql.SQL(template).format(
        raw=sql.SQL(" || ").join(calls),
        ticket=ticket,
        file_ts=sql.Literal(result.file_ts),
        file_key=sql.Literal(result.file_key),
    )


def _log_rejections(result: FileResult, counts: FileCounts) -> None:
    for line, reason in counts.rejections:
        logger.warning(
            "%s, line %d: row rejected: %s",
            result.file_key,
            line,
            reason,
            extra={"file": result.file_key, "line": line, "reason": reason},
        )
    if counts.rejected > len(counts.rejections):
        logger.warning(
            "%s: %d more rejected rows not listed", result.file_key, counts.rejected - len(counts.rejections)
        )


def record_file(conn: psycopg.Connection, result: FileResult, run_id: str) -> None:
    """The ledger row and the watermark, in the same transaction as the rows."""
    params = result.as_dict()
    params.update(
        file_ts=result.file_ts,
        file_ts_iso=result.file_ts.isoformat(),
        rejections=Jsonb(params["rejections"]),
        run_id=run_id,
    )
    conn.execute(LEDGER_SQL, params)
    conn.execute(WATERMARK_SQL, params)
