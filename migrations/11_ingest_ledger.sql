-- The ingestion ledger: one row per change file applied (written in the same
-- transaction as the file's rows, so "applied" and "recorded" cannot
-- disagree), one row per run, and on each ticket the timestamp and key of the
-- file its current version came from. That per-row timestamp guards the upsert:
-- a late file (older than files already applied) never overwrites a newer
-- version of a ticket.

CREATE TABLE tickets.ingest_files (
    file_key          text PRIMARY KEY,
    dataset           text NOT NULL DEFAULT 'inc',
    file_ts           timestamptz NOT NULL,
    etag              text NOT NULL,
    size_bytes        bigint NOT NULL,
    late              boolean NOT NULL DEFAULT false,
    rows_read         integer NOT NULL,
    rows_inserted     integer NOT NULL,
    rows_updated      integer NOT NULL,
    rows_unchanged    integer NOT NULL,
    rows_stale        integer NOT NULL,
    duplicates_in_file integer NOT NULL,
    alarms_dropped    integer NOT NULL,
    sentinels_dropped integer NOT NULL,
    rows_rejected     integer NOT NULL,
    rejections        jsonb NOT NULL DEFAULT '[]'::jsonb,
    read_load_seconds numeric(10, 3) NOT NULL,
    merge_seconds     numeric(10, 3) NOT NULL,
    run_id            text NOT NULL,
    committed_at      timestamptz NOT NULL DEFAULT now(),
    archived_at       timestamptz
);
COMMENT ON COLUMN tickets.ingest_files.rows_stale IS
    'Rows of a late file skipped because the ticket already holds a newer version.';
COMMENT ON COLUMN tickets.ingest_files.rejections IS
    'The first rejected rows as [line, reason] pairs; rows_rejected counts them all.';
CREATE INDEX ingest_files_file_ts_idx ON tickets.ingest_files (file_ts);

CREATE TABLE tickets.ingest_runs (
    run_id        text PRIMARY KEY,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    status        text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'ok', 'failed')),
    files_applied integer NOT NULL DEFAULT 0,
    files_archived integer NOT NULL DEFAULT 0,
    rows_changed  integer NOT NULL DEFAULT 0,
    error         text
);
CREATE INDEX ingest_runs_started_at_idx ON tickets.ingest_runs (started_at DESC);

ALTER TABLE tickets.inc
    ADD COLUMN source_file_ts timestamptz,
    ADD COLUMN source_key text;
ALTER TABLE tickets.crq
    ADD COLUMN source_file_ts timestamptz,
    ADD COLUMN source_key text;
COMMENT ON COLUMN tickets.inc.source_file_ts IS
    'Timestamp of the newest change file that carried this ticket; guards late files.';
