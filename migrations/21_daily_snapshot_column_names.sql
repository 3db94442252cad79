-- inc_daily_snapshot speaks the established names: `day` becomes
-- `snapshot_date` and `closed` becomes `closed_today`, the names the product's
-- documented backlog query has always used
-- (SELECT snapshot_date, open_total, open_breached, closed_today ...).
-- Every other column keeps its name.
--
-- PL/pgSQL and SQL function bodies are stored as text, so the functions that
-- name these columns are re-created here with the new names: same_day_snapshot
-- (reads the previous row by date) and capture_history (finds today's row,
-- upserts on the date, writes the closure count). compute_daily_snapshots
-- returns the table's row type by position and names neither column, so it
-- follows the rename without change; rebuild_history only deletes rows.
-- The bodies are otherwise exactly those of 19.

ALTER TABLE tickets.inc_daily_snapshot RENAME COLUMN day TO snapshot_date;
ALTER TABLE tickets.inc_daily_snapshot RENAME COLUMN closed TO closed_today;
COMMENT ON COLUMN tickets.inc_daily_snapshot.snapshot_date IS 'The EAT calendar day the row describes.';

CREATE OR REPLACE FUNCTION tickets.same_day_snapshot(p_captured_version_id bigint, p_captured_now timestamptz,
                                          p_now timestamptz)
RETURNS SETOF tickets.inc_daily_snapshot LANGUAGE sql STABLE SET jit = off AS $$
    WITH prev AS (
        SELECT * FROM tickets.inc_daily_snapshot
         WHERE snapshot_date = tickets.eat_day(p_now) AND as_of = p_captured_now
    ), changed AS MATERIALIZED (
        SELECT DISTINCT ticket_id FROM tickets.inc_versions WHERE version_id > p_captured_version_id
    ), states AS (
        -- Each changed ticket then (as the previous capture knew it) and now:
        -- its newest version stamped before each instant, and its first.
        SELECT c.ticket_id, was.raw AS raw_then, now_.raw AS raw_now,
               first_then.valid_from AS first_then, first_now.valid_from AS first_now
          FROM changed c
          LEFT JOIN LATERAL (
                SELECT v.raw FROM tickets.inc_versions v
                 WHERE v.ticket_id = c.ticket_id AND v.valid_from < p_captured_now
                   AND v.version_id <= p_captured_version_id
                 ORDER BY v.valid_from DESC LIMIT 1) was ON true
          LEFT JOIN LATERAL (
                SELECT v.raw FROM tickets.inc_versions v
                 WHERE v.ticket_id = c.ticket_id AND v.valid_from < p_now
                 ORDER BY v.valid_from DESC LIMIT 1) now_ ON true
          LEFT JOIN LATERAL (
                SELECT v.valid_from FROM tickets.inc_versions v
                 WHERE v.ticket_id = c.ticket_id AND v.version_id <= p_captured_version_id
                 ORDER BY v.valid_from LIMIT 1) first_then ON true
          LEFT JOIN LATERAL (
                SELECT v.valid_from FROM tickets.inc_versions v
                 WHERE v.ticket_id = c.ticket_id
                 ORDER BY v.valid_from LIMIT 1) first_now ON true
    ), parts AS (
        SELECT coalesce(tickets.clean_text(raw_then ->> 'cluster'), '(blank)') AS cluster, -1 AS open,
               -coalesce((tickets.sla_clock(raw_then) + interval '48 hours' < p_captured_now)::int, 0) AS breached,
               -(tickets.eat_ts(raw_then ->> 'created_at_service') IS NULL)::int AS fallback
          FROM states WHERE tickets.to_bool(raw_then ->> 'is_actionable')
        UNION ALL
        SELECT coalesce(tickets.clean_text(raw_now ->> 'cluster'), '(blank)'), 1,
               coalesce((tickets.sla_clock(raw_now) + interval '48 hours' < p_now)::int, 0),
               (tickets.eat_ts(raw_now ->> 'created_at_service') IS NULL)::int
          FROM states WHERE tickets.to_bool(raw_now ->> 'is_actionable')
        UNION ALL
        SELECT coalesce(i.cluster, '(blank)'), 0, 1, 0
          FROM tickets.inc i
         WHERE coalesce(i.created_at_service, i.first_seen_at) >= p_captured_now - interval '48 hours'
           AND coalesce(i.created_at_service, i.first_seen_at) < p_now - interval '48 hours'
           AND i.is_actionable
           AND NOT EXISTS (SELECT FROM changed c WHERE c.ticket_id = i.ticket_id)
    ), by_cluster AS (
        SELECT cluster, sum(open) AS open FROM (
            SELECT key AS cluster, value::bigint AS open FROM prev, jsonb_each_text(prev.open_by_cluster)
            UNION ALL
            SELECT cluster, open FROM parts) AS counts
         GROUP BY cluster
    ), day_bounds AS (
        SELECT tickets.eat_day(p_now)::timestamp AT TIME ZONE 'Africa/Nairobi' AS day_start
    )
    SELECT prev.snapshot_date, p_now,
           prev.open_total + (SELECT coalesce(sum(open), 0) FROM parts)::integer,
           prev.open_breached + (SELECT coalesce(sum(breached), 0) FROM parts)::integer,
           prev.open_on_first_seen_clock + (SELECT coalesce(sum(fallback), 0) FROM parts)::integer,
           prev.opened
             - (SELECT count(*) FROM states, day_bounds
                 WHERE first_then >= day_start AND first_then < p_captured_now)::integer
             + (SELECT count(*) FROM states, day_bounds
                 WHERE first_now >= day_start AND first_now < p_now)::integer,
           (SELECT count(*) FROM tickets.closure_events e, day_bounds
             WHERE e.observed_at >= day_start AND e.observed_at < p_now)::integer,
           coalesce((SELECT jsonb_object_agg(cluster, open ORDER BY cluster) FROM by_cluster WHERE open > 0),
                    '{}'::jsonb),
           now()
      FROM prev
$$;
COMMENT ON FUNCTION tickets.same_day_snapshot(bigint, timestamptz, timestamptz) IS
    'Today''s snapshot row at p_now from the row captured at p_captured_now; empty when there is no such row.';

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
    v_same_day boolean;
BEGIN
    SELECT * INTO STRICT v_state FROM tickets.history_state FOR UPDATE;
    SELECT coalesce(max(version_id), 0) INTO v_upto FROM tickets.inc_versions;
    IF v_upto > v_state.captured_version_id THEN
        v_closures := tickets.derive_closures(v_state.captured_version_id, v_upto);
        SELECT tickets.eat_day(min(valid_from)) INTO v_from FROM tickets.inc_versions
         WHERE version_id > v_state.captured_version_id AND version_id <= v_upto;
    END IF;
    v_from := least(v_from, tickets.eat_day(v_state.captured_now), v_today);
    -- The row to carry forward must be the one the previous capture wrote.
    v_same_day := coalesce(v_from = v_today AND v_state.captured_now <= p_now, false)
        AND NOT EXISTS (SELECT FROM tickets.inc_versions
                         WHERE valid_from >= v_state.captured_now
                           AND version_id <= v_state.captured_version_id)
        AND EXISTS (SELECT FROM tickets.inc_daily_snapshot
                     WHERE snapshot_date = v_today AND as_of = v_state.captured_now);
    INSERT INTO tickets.inc_daily_snapshot AS s
    SELECT * FROM tickets.same_day_snapshot(v_state.captured_version_id, v_state.captured_now, p_now)
     WHERE v_same_day
    UNION ALL
    SELECT * FROM tickets.compute_daily_snapshots(v_from, v_today, p_now)
     WHERE NOT v_same_day
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
