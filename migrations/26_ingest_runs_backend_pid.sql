-- Which database session each ingest run lives in, so a run that finds the
-- ingest lock taken (and `fleettickets status`) can name the holder's run_id,
-- and an operator can tell whether the session holding the lock is that run.
-- The default records the session that inserts the run row, which is the one
-- holding the lock; older rows stay NULL (their sessions are long gone).

ALTER TABLE tickets.ingest_runs ADD COLUMN backend_pid integer;
ALTER TABLE tickets.ingest_runs ALTER COLUMN backend_pid SET DEFAULT pg_backend_pid();
COMMENT ON COLUMN tickets.ingest_runs.backend_pid IS
    'pg_backend_pid() of the session that ran it (and held the ingest lock).';
