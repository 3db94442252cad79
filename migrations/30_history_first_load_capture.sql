-- The first capture of a first load in one set-based pass. After a baseline
-- into an empty database every ticket has one version, the baseline's row,
-- which is exactly what tickets.inc holds: each ticket is first observed at
-- the baseline's stamp, a closed one is a closure first observed then, and
-- each later day reads the same state. The general path still ordered a
-- million versions twice, read every field of every version from raw, and
-- fetched each of ~470,000 closures' raw again by key: about 50 s.
--
-- The first-load path reads the generated columns of tickets.inc instead
-- (03's expressions, the same ones the history functions apply to raw; only
-- mttr is read from raw, the column holding whole minutes since 06):
-- - tickets.first_load_closures: every closed ticket is a closure
--   (first_observation), observed at the stamp, from one scan;
-- - tickets.first_load_snapshots: the daily rows from the stamp's day to
--   today, from the open tickets grouped by cluster and by the day their
--   48 hours run out (the grouping 15 uses for unchanged tickets), plus the
--   whole load as opened and the closures as closed on the stamp's day.
--
-- capture_history takes it on a first capture (watermark 0) when every
-- version carries one stamp, earlier than the capture, and every ticket was
-- last written by that load: the same stamp and the same transaction as the
-- versions (so no ticket lacks a version or holds another file's row). Checked
-- with three index probes and one scan of tickets.inc. Anything else takes the
-- general path, which stays the definition: the history tests compare the
-- first-load rows and closures with it, with the model and with a rebuild.

-- The stamp of a first load that the first-load path may capture, or NULL.
CREATE FUNCTION tickets.first_load_stamp(p_now timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE SET jit = off AS $$
    WITH versions AS (
        SELECT (SELECT min(valid_from) FROM tickets.inc_versions) AS first_at,
               (SELECT max(valid_from) FROM tickets.inc_versions) AS last_at,
               (SELECT recorded_at FROM tickets.inc_versions ORDER BY version_id LIMIT 1) AS recorded_at
    ), tickets AS (
        SELECT min(source_file_ts) AS first_file, max(source_file_ts) AS last_file,
               min(ingested_at) AS first_write, max(ingested_at) AS last_write
          FROM tickets.inc
    )
    SELECT v.first_at
      FROM versions v, tickets t
     WHERE v.first_at = v.last_at AND v.first_at < p_now
       AND t.first_file = v.first_at AND t.last_file = v.first_at
       AND t.first_write = v.recorded_at AND t.last_write = v.recorded_at
$$;

-- Closures of a first load stamped p_at: every closed ticket, first observed
-- then. Events that a different set of versions left behind are dropped, as
-- derive_closures does. Into an empty table (a first capture, a rebuild),
-- the rows go in first and each index, primary key included, is then built
-- by one sort, as the loader does for a baseline: inserting ~470,000 events
-- into three btrees row by row cost 19 s, this about 9 s (a million tickets,
-- a busy 2-CPU machine). The table is locked until the run commits, which on
-- a first load is when there is nothing to read yet.
CREATE FUNCTION tickets.first_load_closures(p_at timestamptz) RETURNS integer
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    v_added integer;
    v_index record;
    v_rebuild text[] := '{}';
    v_statement text;
BEGIN
    IF EXISTS (SELECT FROM tickets.closure_events) THEN
        DELETE FROM tickets.closure_events e
         WHERE e.observed_at <> p_at
            OR NOT EXISTS (SELECT FROM tickets.inc i
                            WHERE i.ticket_id = e.ticket_id AND i.is_actionable IS FALSE);
        INSERT INTO tickets.closure_events (
            ticket_id, observed_at, closed_at, source_key, first_observation, owner,
            assigned_team, cluster, region, mttr_hours, sla_status)
        SELECT i.ticket_id, p_at, i.closed_at, i.source_key, true, i.owner,
               i.assigned_team, i.cluster, i.region, tickets.to_numeric(i.raw ->> 'mttr'), i.sla_status
          FROM tickets.inc i
         WHERE i.is_actionable IS FALSE
        ON CONFLICT (ticket_id, observed_at) DO NOTHING;
        GET DIAGNOSTICS v_added = ROW_COUNT;
        RETURN v_added;
    END IF;
    FOR v_index IN
        SELECT c.relname AS index_name, k.conname, k.contype,
               CASE WHEN k.contype IN ('p', 'u')
                    THEN format('ALTER TABLE tickets.closure_events ADD CONSTRAINT %I %s',
                                k.conname, pg_get_constraintdef(k.oid))
                    ELSE pg_get_indexdef(i.indexrelid) END AS definition
          FROM pg_index i
          JOIN pg_class c ON c.oid = i.indexrelid
          LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = i.indrelid
         WHERE i.indrelid = 'tickets.closure_events'::regclass
         ORDER BY k.contype NULLS LAST, c.relname
    LOOP
        IF v_index.contype IN ('p', 'u') THEN
            EXECUTE format('ALTER TABLE tickets.closure_events DROP CONSTRAINT %I', v_index.conname);
        ELSIF v_index.contype IS NULL THEN
            EXECUTE format('DROP INDEX tickets.%I', v_index.index_name);
        ELSE
            CONTINUE;  -- an index another kind of constraint owns stays
        END IF;
        v_rebuild := v_rebuild || v_index.definition;
    END LOOP;
    -- One row per ticket: no key can repeat.
    INSERT INTO tickets.closure_events (
        ticket_id, observed_at, closed_at, source_key, first_observation, owner,
        assigned_team, cluster, region, mttr_hours, sla_status)
    SELECT i.ticket_id, p_at, i.closed_at, i.source_key, true, i.owner,
           i.assigned_team, i.cluster, i.region, tickets.to_numeric(i.raw ->> 'mttr'), i.sla_status
      FROM tickets.inc i
     WHERE i.is_actionable IS FALSE;
    GET DIAGNOSTICS v_added = ROW_COUNT;
    FOREACH v_statement IN ARRAY v_rebuild LOOP
        EXECUTE v_statement;
    END LOOP;
    RETURN v_added;
END
$$;

-- The daily rows of a first load stamped p_at, from its day through p_now's.
CREATE FUNCTION tickets.first_load_snapshots(p_at timestamptz, p_now timestamptz)
RETURNS SETOF tickets.inc_daily_snapshot LANGUAGE sql STABLE SET jit = off AS $$
    WITH days AS (
        SELECT d::date AS day, least(tickets.eat_day_end(d::date), p_now) AS as_of
          FROM generate_series(tickets.eat_day(p_at)::timestamp, tickets.eat_day(p_now)::timestamp,
                               interval '1 day') AS d
    ), groups AS (
        -- breach_day written out: the function is not inlined (interval
        -- arithmetic on timestamptz is only STABLE) and costs a call per row.
        SELECT coalesce(i.cluster, '(blank)') AS cluster,
               CASE WHEN coalesce(i.created_at_service, i.first_seen_at) + interval '48 hours' < p_now
                    THEN tickets.eat_day(coalesce(i.created_at_service, i.first_seen_at)
                                         + interval '48 hours') END AS breach_day,
               count(*) AS open, sum((i.created_at_service IS NULL)::int) AS fallback
          FROM tickets.inc i
         WHERE i.is_actionable
         GROUP BY 1, 2
    ), per_cluster AS (
        SELECT d.day, g.cluster, sum(g.open) AS open, sum(g.fallback) AS fallback,
               coalesce(sum(g.open) FILTER (WHERE g.breach_day <= d.day), 0) AS breached
          FROM days d CROSS JOIN groups g
         GROUP BY d.day, g.cluster
    ), open_counts AS (
        SELECT day, sum(open) AS open_total, sum(breached) AS breached, sum(fallback) AS fallback,
               jsonb_object_agg(cluster, open ORDER BY cluster) AS by_cluster
          FROM per_cluster GROUP BY day
    ), load AS (
        SELECT count(*) AS opened, count(*) FILTER (WHERE i.is_actionable IS FALSE) AS closed
          FROM tickets.inc i
    )
    SELECT d.day, d.as_of,
           coalesce(o.open_total, 0)::integer, coalesce(o.breached, 0)::integer,
           coalesce(o.fallback, 0)::integer,
           CASE WHEN d.day = tickets.eat_day(p_at) THEN l.opened ELSE 0 END::integer,
           CASE WHEN d.day = tickets.eat_day(p_at) THEN l.closed ELSE 0 END::integer,
           coalesce(o.by_cluster, '{}'::jsonb), now()
      FROM days d
      CROSS JOIN load l
      LEFT JOIN open_counts o USING (day)
     ORDER BY d.day
$$;

CREATE OR REPLACE FUNCTION tickets.capture_history(p_now timestamptz DEFAULT now())
RETURNS TABLE (closures_added integer, days_refreshed integer, versions_seen bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_state tickets.history_state;
    v_upto bigint;
    v_from date;
    v_closures integer := 0;
    v_days integer;
    v_today date := tickets.eat_day(p_now);
    v_carry_to date;
    v_carry boolean := false;
    v_rest_from date;
    v_first_known date;
    v_first_load timestamptz;
BEGIN
    SELECT * INTO STRICT v_state FROM tickets.history_state FOR UPDATE;
    SELECT coalesce(max(version_id), 0) INTO v_upto FROM tickets.inc_versions;
    IF v_upto > 0 AND v_state.captured_version_id = 0 THEN
        v_first_load := tickets.first_load_stamp(p_now);
    END IF;
    IF v_first_load IS NOT NULL THEN
        v_closures := tickets.first_load_closures(v_first_load);
    ELSIF v_upto > v_state.captured_version_id THEN
        v_closures := tickets.derive_closures(v_state.captured_version_id, v_upto);
        -- The new versions by their ids: min() over the valid_from index
        -- would walk every older stamp first (1.5 s past a million versions).
        SELECT tickets.eat_day(min(valid_from)) INTO v_from
          FROM (SELECT valid_from FROM tickets.inc_versions
                 WHERE version_id > v_state.captured_version_id AND version_id <= v_upto
                OFFSET 0) AS new_versions;
    END IF;
    v_from := least(v_from, tickets.eat_day(v_state.captured_now), v_today);
    IF v_state.captured_now <= p_now THEN
        -- The rows the previous capture left final: the days before its own,
        -- and its own (today's) when nothing known then is stamped after it.
        v_carry_to := tickets.eat_day(v_state.captured_now) - 1;
        IF v_carry_to + 1 = v_today AND NOT EXISTS (
                SELECT FROM tickets.inc_versions
                 WHERE valid_from >= v_state.captured_now AND version_id <= v_state.captured_version_id) THEN
            v_carry_to := v_today;
        END IF;
    END IF;
    IF v_from <= v_carry_to THEN
        -- Every row to carry must be there, as that capture wrote it; days
        -- before the first version it knew had none (they were empty).
        SELECT tickets.eat_day(min(valid_from)) INTO v_first_known FROM tickets.inc_versions
         WHERE version_id <= v_state.captured_version_id;
        SELECT count(*) = greatest(v_carry_to - greatest(v_from, v_first_known) + 1, 0) INTO v_carry
          FROM tickets.inc_daily_snapshot
         WHERE snapshot_date BETWEEN greatest(v_from, v_first_known) AND v_carry_to
           AND as_of = least(tickets.eat_day_end(snapshot_date), v_state.captured_now);
    END IF;
    v_rest_from := CASE WHEN v_carry THEN v_carry_to + 1 ELSE v_from END;
    INSERT INTO tickets.inc_daily_snapshot AS s
    SELECT * FROM tickets.first_load_snapshots(v_first_load, p_now)
     WHERE v_first_load IS NOT NULL
    UNION ALL
    SELECT * FROM tickets.carry_snapshots(v_state.captured_version_id, v_state.captured_now,
                                          v_from, v_carry_to, p_now)
     WHERE v_carry
    UNION ALL
    SELECT * FROM tickets.compute_daily_snapshots(v_rest_from, v_today, p_now)
     WHERE v_rest_from <= v_today AND v_first_load IS NULL
    ON CONFLICT (snapshot_date) DO UPDATE
       SET as_of = EXCLUDED.as_of, open_total = EXCLUDED.open_total,
           open_breached = EXCLUDED.open_breached,
           open_on_first_seen_clock = EXCLUDED.open_on_first_seen_clock,
           opened = EXCLUDED.opened, closed_today = EXCLUDED.closed_today,
           open_by_cluster = EXCLUDED.open_by_cluster, computed_at = EXCLUDED.computed_at;
    GET DIAGNOSTICS v_days = ROW_COUNT;
    UPDATE tickets.history_state
       SET captured_version_id = v_upto, captured_now = p_now, updated_at = now();
    RETURN QUERY SELECT v_closures, v_days, v_upto - v_state.captured_version_id;
END
$$;

-- Internal, like every routine since migration 24: no EXECUTE for PUBLIC.
REVOKE EXECUTE ON FUNCTION tickets.first_load_stamp(timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tickets.first_load_closures(timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tickets.first_load_snapshots(timestamptz, timestamptz) FROM PUBLIC;
