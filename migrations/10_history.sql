-- History: every version of every INC ticket, the closures observed in them,
-- and one backlog snapshot per EAT day, plus point-in-time reads.
-- Why: the dashboard needs backlog-over-time, closure rate and MTTR trends,
-- and a current-state table forgets the past. The change stream already holds
-- every version, so ingestion appends each changed row to inc_versions (in the
-- merge statement, same transaction) and everything else here derives from
-- those versions: capture_history() keeps closure_events and
-- inc_daily_snapshot up to date incrementally, rebuild_history() recomputes
-- them from scratch, and both give the same rows. Semantics: docs/history.md.
-- Only tickets.inc columns from 01/03 are read here; the ingest ledger (11)
-- is used by the Python side, never by these functions.

CREATE TABLE tickets.inc_versions (
    ticket_id   text NOT NULL,
    valid_from  timestamptz NOT NULL,
    source_key  text NOT NULL,
    raw         jsonb NOT NULL,
    version_id  bigint GENERATED ALWAYS AS IDENTITY,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ticket_id, valid_from)
);
COMMENT ON TABLE tickets.inc_versions IS
    'Every observed version of every INC ticket: the cleaned row as the change file stamped valid_from carried it.';
COMMENT ON COLUMN tickets.inc_versions.valid_from IS
    'Timestamp of the change file the version came from (file time, not the ticket''s own clocks).';
COMMENT ON COLUMN tickets.inc_versions.version_id IS
    'Insertion order: capture_history() processes versions above its watermark.';
-- Version writers are serialized by the ingest lock, so version_id order is
-- commit order and a watermark on it never skips a row. Monotonic keys make
-- this btree cheap to maintain; valid_from is mostly in insertion order, so
-- a BRIN index serves the per-day range scans at almost no write cost.
CREATE INDEX inc_versions_version_id_idx ON tickets.inc_versions (version_id);
CREATE INDEX inc_versions_valid_from_brin ON tickets.inc_versions USING brin (valid_from);

CREATE TABLE tickets.closure_events (
    ticket_id         text NOT NULL,
    observed_at       timestamptz NOT NULL,
    closed_at         timestamptz,
    source_key        text NOT NULL,
    first_observation boolean NOT NULL,
    owner             text,
    assigned_team     text,
    cluster           text,
    region            text,
    mttr_hours        numeric,
    sla_status        text,
    PRIMARY KEY (ticket_id, observed_at)
);
COMMENT ON TABLE tickets.closure_events IS
    'One row per observed closure: a version that is closed while the ticket''s previous version was not (or did not exist).';
COMMENT ON COLUMN tickets.closure_events.observed_at IS
    'valid_from of the closing version: when the stream first showed this closure.';
COMMENT ON COLUMN tickets.closure_events.closed_at IS 'The feed''s closed_at (EAT parsed); NULL when the feed gave none.';
COMMENT ON COLUMN tickets.closure_events.first_observation IS
    'The ticket was already closed when first seen (e.g. in the baseline): the closure predates the stream.';
COMMENT ON COLUMN tickets.closure_events.mttr_hours IS 'The feed''s mttr as given: decimal hours.';
CREATE INDEX closure_events_closed_at_idx ON tickets.closure_events (closed_at);
CREATE INDEX closure_events_observed_at_idx ON tickets.closure_events (observed_at);

CREATE TABLE tickets.inc_daily_snapshot (
    day                      date PRIMARY KEY,
    as_of                    timestamptz NOT NULL,
    open_total               integer NOT NULL,
    open_breached            integer NOT NULL,
    open_on_first_seen_clock integer NOT NULL,
    opened                   integer NOT NULL,
    closed                   integer NOT NULL,
    open_by_cluster          jsonb NOT NULL,
    computed_at              timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE tickets.inc_daily_snapshot IS
    'One row per EAT day, as observed: the state the change files stamped before as_of showed.';
COMMENT ON COLUMN tickets.inc_daily_snapshot.as_of IS
    'End of the EAT day, or the capture time for the current day.';
COMMENT ON COLUMN tickets.inc_daily_snapshot.open_breached IS
    'Open tickets whose 48 h SLA clock (created_at_service, else first_seen_at) started over 48 h before as_of.';
COMMENT ON COLUMN tickets.inc_daily_snapshot.open_on_first_seen_clock IS
    'Open tickets without created_at_service whose SLA clock fell back to first_seen_at.';
COMMENT ON COLUMN tickets.inc_daily_snapshot.opened IS 'Tickets first observed in the stream that day.';
COMMENT ON COLUMN tickets.inc_daily_snapshot.closed IS 'Closure events observed that day (closure_events.observed_at).';
COMMENT ON COLUMN tickets.inc_daily_snapshot.open_by_cluster IS
    'Open tickets per cluster; "(blank)" for tickets without one.';

-- The incremental capture's watermark: one row.
CREATE TABLE tickets.history_state (
    singleton           boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    captured_version_id bigint NOT NULL DEFAULT 0,
    captured_now        timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
INSERT INTO tickets.history_state DEFAULT VALUES;

-- The 48 h SLA clock of the feed contract.
CREATE FUNCTION tickets.sla_clock(p_raw jsonb) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(tickets.eat_ts(p_raw ->> 'created_at_service'),
                    tickets.eat_ts(p_raw ->> 'first_seen_at'))
$$;

-- The EAT calendar day of an instant, and the instant an EAT day ends.
CREATE FUNCTION tickets.eat_day(p_at timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (p_at AT TIME ZONE 'Africa/Nairobi')::date
$$;
CREATE FUNCTION tickets.eat_day_end(p_day date) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (p_day + 1)::timestamp AT TIME ZONE 'Africa/Nairobi'
$$;

-- Point in time: every ticket (or one) as the newest version stamped at or before p_at.
CREATE FUNCTION tickets.inc_as_of(p_at timestamptz, p_ticket_id text DEFAULT NULL)
RETURNS TABLE (ticket_id text, valid_from timestamptz, source_key text, raw jsonb)
LANGUAGE sql STABLE AS $$
    SELECT DISTINCT ON (v.ticket_id) v.ticket_id, v.valid_from, v.source_key, v.raw
      FROM tickets.inc_versions v
     WHERE v.valid_from <= p_at
       AND (p_ticket_id IS NULL OR v.ticket_id = p_ticket_id)
     ORDER BY v.ticket_id, v.valid_from DESC
$$;

-- One ticket's timeline up to p_at: each version and when the next replaced it.
CREATE FUNCTION tickets.inc_timeline(p_ticket_id text, p_at timestamptz DEFAULT 'infinity')
RETURNS TABLE (valid_from timestamptz, valid_to timestamptz, source_key text, raw jsonb)
LANGUAGE sql STABLE AS $$
    SELECT v.valid_from, lead(v.valid_from) OVER (ORDER BY v.valid_from), v.source_key, v.raw
      FROM tickets.inc_versions v
     WHERE v.ticket_id = p_ticket_id AND v.valid_from <= p_at
     ORDER BY v.valid_from
$$;

-- Closures of the tickets that have versions above p_after_version_id (0:
-- every ticket), derived from each ticket's whole version sequence. Only a
-- late or replayed version can invalidate an event (it lands before the
-- closing version and already shows the ticket closed); such an event is
-- replaced by the earlier one, so the table always equals a full rebuild.
CREATE FUNCTION tickets.derive_closures(p_after_version_id bigint, p_upto_version_id bigint)
RETURNS integer LANGUAGE sql SET jit = off AS $$
    WITH touched AS (
        SELECT DISTINCT ticket_id FROM tickets.inc_versions
         WHERE version_id > p_after_version_id AND version_id <= p_upto_version_id
    ), seq AS (
        SELECT v.ticket_id, v.valid_from, v.source_key, v.raw,
               tickets.to_bool(v.raw ->> 'is_actionable') IS FALSE AS closed,
               lag(tickets.to_bool(v.raw ->> 'is_actionable') IS FALSE)
                   OVER (PARTITION BY v.ticket_id ORDER BY v.valid_from) AS was_closed
          FROM tickets.inc_versions v
         WHERE p_after_version_id = 0 OR v.ticket_id IN (SELECT ticket_id FROM touched)
    ), events AS (
        SELECT * FROM seq WHERE closed AND was_closed IS NOT TRUE
    ), dropped AS (
        DELETE FROM tickets.closure_events e
         WHERE (p_after_version_id = 0 OR e.ticket_id IN (SELECT ticket_id FROM touched))
           AND NOT EXISTS (SELECT 1 FROM events n
                            WHERE n.ticket_id = e.ticket_id AND n.valid_from = e.observed_at)
    ), added AS (
        INSERT INTO tickets.closure_events (
            ticket_id, observed_at, closed_at, source_key, first_observation, owner,
            assigned_team, cluster, region, mttr_hours, sla_status)
        SELECT ticket_id, valid_from, tickets.eat_ts(raw ->> 'closed_at'), source_key,
               was_closed IS NULL,
               tickets.clean_text(raw ->> 'owner'),
               tickets.clean_text(raw ->> 'assigned_team'),
               tickets.clean_text(raw ->> 'cluster'),
               lower(tickets.clean_text(raw ->> 'region')),
               tickets.to_numeric(raw ->> 'mttr'),
               tickets.clean_text(raw ->> 'sla_status')
          FROM events
        ON CONFLICT (ticket_id, observed_at) DO NOTHING
        RETURNING 1
    )
    SELECT count(*)::integer FROM added
$$;

-- The daily rows for EAT days p_from..p_to (clamped to the first version's
-- day; p_to at most p_now's day), each read at as_of = least(end of day,
-- p_now) from the versions stamped before as_of.
-- Cost is O(versions + days x clusters), never days x tickets: each open
-- version (a span up to the next version of its ticket) is turned into the
-- exact range of days whose as_of it is current at, and into the day its 48 h
-- clock runs out; +1/-1 marks and running sums then count every day at once.
-- When every day is read after the newest version, the state is each
-- ticket's newest version, which is exactly tickets.inc: reading that skips
-- the window over all versions on the common path (today's row, every run).
-- JIT is off: the planner's row estimates for these set-returning steps are
-- far too high, and compiling cost over a second on every run for nothing.
CREATE FUNCTION tickets.compute_daily_snapshots(p_from date, p_to date, p_now timestamptz DEFAULT now())
RETURNS SETOF tickets.inc_daily_snapshot LANGUAGE sql STABLE SET jit = off AS $$
    WITH bounds AS (
        SELECT min(valid_from) AS first_at, max(valid_from) AS last_at,
               greatest(p_from, tickets.eat_day(min(valid_from))) AS from_day,
               least(p_to, tickets.eat_day(p_now)) AS to_day
          FROM tickets.inc_versions
    ), days AS (
        SELECT d::date AS day,
               d::date::timestamp AT TIME ZONE 'Africa/Nairobi' AS day_start,
               least(tickets.eat_day_end(d::date), p_now) AS as_of
          FROM bounds, generate_series(bounds.from_day::timestamp, bounds.to_day::timestamp,
                                       interval '1 day') AS d
         WHERE bounds.first_at IS NOT NULL
    ), current_only AS (
        SELECT coalesce((SELECT min(as_of) FROM days) > (SELECT last_at FROM bounds), false) AS yes
    ), facts AS (
        SELECT s.valid_from, s.valid_to,
               tickets.sla_clock(s.raw) + interval '48 hours' AS breach_at,
               (tickets.eat_ts(s.raw ->> 'created_at_service') IS NULL)::int AS fallback,
               coalesce(tickets.clean_text(s.raw ->> 'cluster'), '(blank)') AS cluster
          FROM (SELECT v.valid_from, v.raw,
                       lead(v.valid_from) OVER (PARTITION BY v.ticket_id ORDER BY v.valid_from) AS valid_to
                  FROM tickets.inc_versions v
                 WHERE NOT (SELECT yes FROM current_only)) s
         WHERE tickets.to_bool(s.raw ->> 'is_actionable') AND s.valid_from < p_now
        UNION ALL
        -- The same facts from 03's generated columns: no parsing per run.
        SELECT '-infinity'::timestamptz, NULL,
               coalesce(i.created_at_service, i.first_seen_at) + interval '48 hours',
               (i.created_at_service IS NULL)::int, coalesce(i.cluster, '(blank)')
          FROM tickets.inc i
         WHERE (SELECT yes FROM current_only) AND i.is_actionable
    ), covers AS (
        -- A version is current at as_of(D) when valid_from < as_of(D) <= valid_to;
        -- for D before p_now's day as_of(D) is the day's end, for that day p_now.
        SELECT greatest(tickets.eat_day(f.valid_from), b.from_day) AS lo,
               least(CASE WHEN f.valid_to IS NULL OR f.valid_to >= p_now THEN b.to_day
                          ELSE tickets.eat_day(f.valid_to) - 1 END, b.to_day) AS hi,
               CASE WHEN f.breach_at < p_now
                    THEN greatest(tickets.eat_day(f.breach_at), b.from_day) END AS breach_lo,
               f.fallback, f.cluster
          FROM facts f, bounds b
    ), marks AS (
        SELECT lo AS day, cluster, 1 AS open, fallback, 0 AS breached FROM covers WHERE lo <= hi
        UNION ALL
        SELECT hi + 1, cluster, -1, -fallback, 0 FROM covers WHERE lo <= hi
        UNION ALL
        SELECT greatest(lo, breach_lo), cluster, 0, 0, 1 FROM covers WHERE breach_lo <= hi AND lo <= hi
        UNION ALL
        SELECT hi + 1, cluster, 0, 0, -1 FROM covers WHERE breach_lo <= hi AND lo <= hi
    ), per_cluster AS (
        SELECT d.day, c.cluster,
               sum(coalesce(m.open, 0)) OVER w AS open,
               sum(coalesce(m.fallback, 0)) OVER w AS fallback,
               sum(coalesce(m.breached, 0)) OVER w AS breached
          FROM days d
         CROSS JOIN (SELECT DISTINCT cluster FROM marks) c
          LEFT JOIN (SELECT day, cluster, sum(open) AS open, sum(fallback) AS fallback,
                            sum(breached) AS breached
                       FROM marks GROUP BY day, cluster) m
                 ON m.day = d.day AND m.cluster = c.cluster
        WINDOW w AS (PARTITION BY c.cluster ORDER BY d.day)
    ), open_counts AS (
        SELECT day, sum(open) AS open_total, sum(breached) AS breached, sum(fallback) AS fallback,
               coalesce(jsonb_object_agg(cluster, open) FILTER (WHERE open > 0), '{}'::jsonb) AS by_cluster
          FROM per_cluster GROUP BY day
    ), opened AS (
        SELECT d.day, count(*) AS n
          FROM days d
          JOIN tickets.inc_versions v ON v.valid_from >= d.day_start AND v.valid_from < d.as_of
         WHERE NOT EXISTS (SELECT 1 FROM tickets.inc_versions p
                            WHERE p.ticket_id = v.ticket_id AND p.valid_from < v.valid_from)
         GROUP BY d.day
    ), closed AS (
        SELECT d.day, count(*) AS n
          FROM days d
          JOIN tickets.closure_events e ON e.observed_at >= d.day_start AND e.observed_at < d.as_of
         GROUP BY d.day
    )
    SELECT d.day, d.as_of,
           coalesce(o.open_total, 0)::integer, coalesce(o.breached, 0)::integer,
           coalesce(o.fallback, 0)::integer, coalesce(op.n, 0)::integer,
           coalesce(cl.n, 0)::integer, coalesce(o.by_cluster, '{}'::jsonb), now()
      FROM days d
      LEFT JOIN open_counts o USING (day)
      LEFT JOIN opened op USING (day)
      LEFT JOIN closed cl USING (day)
     ORDER BY d.day
$$;

-- Append the closures of versions recorded since the last capture and upsert
-- the daily rows they can have changed: from the day of the oldest new
-- version (a late file reaches back), and the day of the previous capture
-- (its row is final only now), through today. With nothing new this is just
-- today's row. Returns what it did.
CREATE FUNCTION tickets.capture_history(p_now timestamptz DEFAULT now())
RETURNS TABLE (closures_added integer, days_refreshed integer, versions_seen bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_state tickets.history_state;
    v_upto bigint;
    v_from date;
    v_closures integer := 0;
    v_days integer;
BEGIN
    SELECT * INTO STRICT v_state FROM tickets.history_state FOR UPDATE;
    SELECT coalesce(max(version_id), 0) INTO v_upto FROM tickets.inc_versions;
    IF v_upto > v_state.captured_version_id THEN
        v_closures := tickets.derive_closures(v_state.captured_version_id, v_upto);
        SELECT tickets.eat_day(min(valid_from)) INTO v_from FROM tickets.inc_versions
         WHERE version_id > v_state.captured_version_id AND version_id <= v_upto;
    END IF;
    v_from := least(v_from, tickets.eat_day(v_state.captured_now), tickets.eat_day(p_now));
    INSERT INTO tickets.inc_daily_snapshot AS s
    SELECT * FROM tickets.compute_daily_snapshots(v_from, tickets.eat_day(p_now), p_now)
    ON CONFLICT (day) DO UPDATE
       SET as_of = EXCLUDED.as_of, open_total = EXCLUDED.open_total,
           open_breached = EXCLUDED.open_breached,
           open_on_first_seen_clock = EXCLUDED.open_on_first_seen_clock,
           opened = EXCLUDED.opened, closed = EXCLUDED.closed,
           open_by_cluster = EXCLUDED.open_by_cluster, computed_at = EXCLUDED.computed_at;
    GET DIAGNOSTICS v_days = ROW_COUNT;
    UPDATE tickets.history_state
       SET captured_version_id = v_upto, captured_now = p_now, updated_at = now();
    RETURN QUERY SELECT v_closures, v_days, v_upto - v_state.captured_version_id;
END
$$;

-- Recompute closure_events and inc_daily_snapshot from the versions alone,
-- from the first version's day through today; the incremental capture must
-- give the same rows, which the tests check.
CREATE FUNCTION tickets.rebuild_history(p_now timestamptz DEFAULT now())
RETURNS TABLE (closures_added integer, days_refreshed integer, versions_seen bigint)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM tickets.history_state FOR UPDATE;
    DELETE FROM tickets.closure_events;
    DELETE FROM tickets.inc_daily_snapshot;
    UPDATE tickets.history_state SET captured_version_id = 0, captured_now = NULL;
    RETURN QUERY SELECT * FROM tickets.capture_history(p_now);
END
$$;
