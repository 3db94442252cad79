-- Past days carried forward by the changed tickets only. A delta whose file
-- is stamped long ago (a late file, a replay, a test stream dated months
-- back) made the capture recompute every day from that stamp through today,
-- and each day's count went over every open ticket: on 1,000,000 tickets
-- (451,713 open) a 20,000-row delta stamped 170 days back spent 22.6 s
-- recomputing 171 daily rows.
--
-- A day that ended before the previous capture's day began has a final row:
-- the state at the day's end of the versions known then. New versions change
-- it only through the tickets they belong to, so tickets.carry_past_days
-- takes each such row and, for the changed tickets alone, removes their part
-- as the previous capture knew them (their versions up to its watermark) and
-- adds their part now (all their versions). Both parts come from one pass
-- over those tickets' versions with the interval marks of
-- compute_daily_snapshots: open, past 48 hours, on the first-seen clock, per
-- cluster, plus the day of each first version (opened) and of each closure
-- (closed_today, by the rule derive_closures applies). Cost: the changed
-- tickets' versions plus days x clusters; the other tickets are never read.
--
-- capture_history carries those days; the previous capture's day and the
-- days after it go as before (the same-day path for today when it applies,
-- now also after a late file, else the full computation). A day in the range
-- with no final row takes the full computation for the whole range, except
-- days before the first version known then, whose row was empty. The history
-- tests compare every row with a full recompute, a rebuild and the model.

CREATE FUNCTION tickets.carry_past_days(p_captured_version_id bigint, p_from date, p_to date)
RETURNS SETOF tickets.inc_daily_snapshot LANGUAGE sql STABLE SET jit = off AS $$
    WITH changed AS MATERIALIZED (
        SELECT DISTINCT ticket_id FROM tickets.inc_versions WHERE version_id > p_captured_version_id
    ), fields AS MATERIALIZED (
        -- Read from raw once, before the versions are ordered (narrow sorts).
        SELECT v.ticket_id, v.valid_from, v.version_id <= p_captured_version_id AS known,
               tickets.to_bool(v.raw ->> 'is_actionable') AS actionable,
               tickets.sla_clock(v.raw) + interval '48 hours' AS breach_at,
               (tickets.eat_ts(v.raw ->> 'created_at_service') IS NULL)::int AS fallback,
               coalesce(tickets.clean_text(v.raw ->> 'cluster'), '(blank)') AS cluster
          FROM changed c JOIN tickets.inc_versions v ON v.ticket_id = c.ticket_id
    ), spans AS (
        -- Each ticket's versions as the previous capture knew them (sign -1)
        -- and as they are now (sign +1), each with the next one's stamp and
        -- whether the one before it was closed (NULL: it is the first).
        SELECT sign, cluster, fallback, actionable,
               tickets.eat_day(valid_from) AS from_day,
               CASE WHEN lead(valid_from) OVER w IS NULL THEN p_to
                    ELSE tickets.eat_day(lead(valid_from) OVER w) - 1 END AS to_day,
               tickets.eat_day(breach_at) AS breach_day,
               lag(actionable IS FALSE) OVER w AS was_closed
          FROM (SELECT -1 AS sign, * FROM fields WHERE known
                UNION ALL
                SELECT 1, * FROM fields) AS f
        WINDOW w AS (PARTITION BY sign, ticket_id ORDER BY valid_from)
    ), covers AS (
        -- A version is the state at the end of day D when it was stamped on
        -- D or before and the next one after D; the same days clamped to
        -- p_from..p_to, and the first of them past the 48 hours.
        SELECT sign, cluster, fallback,
               greatest(from_day, p_from) AS lo, least(to_day, p_to) AS hi,
               CASE WHEN breach_day IS NOT NULL THEN greatest(from_day, p_from, breach_day) END AS breach_lo
          FROM spans
         WHERE actionable
    ), marks AS (
        SELECT lo AS day, cluster, sign AS open, sign * fallback AS fallback, 0 AS breached
          FROM covers WHERE lo <= hi
        UNION ALL
        SELECT hi + 1, cluster, -sign, -sign * fallback, 0 FROM covers WHERE lo <= hi
        UNION ALL
        SELECT breach_lo, cluster, 0, 0, sign FROM covers WHERE breach_lo <= hi
        UNION ALL
        SELECT hi + 1, cluster, 0, 0, -sign FROM covers WHERE breach_lo <= hi
    ), days AS (
        SELECT d::date AS day FROM generate_series(p_from::timestamp, p_to::timestamp, interval '1 day') AS d
    ), per_cluster AS (
        -- Running sums of the marks: each day's change per cluster.
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
    ), changes AS (
        SELECT day, sum(open) AS open, sum(fallback) AS fallback, sum(breached) AS breached
          FROM per_cluster GROUP BY day
    ), firsts AS (
        -- A first version opens its ticket on its day; a closed version after
        -- one that was not closed (or first) is a closure observed that day.
        SELECT from_day AS day,
               sum(sign) FILTER (WHERE was_closed IS NULL) AS opened,
               sum(sign) FILTER (WHERE actionable IS FALSE AND was_closed IS NOT TRUE) AS closed
          FROM spans
         WHERE from_day BETWEEN p_from AND p_to
         GROUP BY from_day
    ), old AS (
        SELECT * FROM tickets.inc_daily_snapshot WHERE snapshot_date BETWEEN p_from AND p_to
    ), by_cluster AS (
        SELECT day, jsonb_object_agg(cluster, open ORDER BY cluster) FILTER (WHERE open > 0) AS open_by_cluster
          FROM (SELECT day, cluster, sum(open) AS open
                  FROM (SELECT o.snapshot_date AS day, e.key AS cluster, e.value::bigint AS open
                          FROM old o, jsonb_each_text(o.open_by_cluster) AS e
                        UNION ALL
                        SELECT day, cluster, open FROM per_cluster) AS counts
                 GROUP BY day, cluster) AS sums
         GROUP BY day
    )
    SELECT d.day, tickets.eat_day_end(d.day),
           (coalesce(o.open_total, 0) + coalesce(c.open, 0))::integer,
           (coalesce(o.open_breached, 0) + coalesce(c.breached, 0))::integer,
           (coalesce(o.open_on_first_seen_clock, 0) + coalesce(c.fallback, 0))::integer,
           (coalesce(o.opened, 0) + coalesce(f.opened, 0))::integer,
           (coalesce(o.closed_today, 0) + coalesce(f.closed, 0))::integer,
           coalesce(b.open_by_cluster, '{}'::jsonb), now()
      FROM days d
      LEFT JOIN old o ON o.snapshot_date = d.day
      LEFT JOIN changes c ON c.day = d.day
      LEFT JOIN firsts f ON f.day = d.day
      LEFT JOIN by_cluster b ON b.day = d.day
     ORDER BY d.day
$$;
COMMENT ON FUNCTION tickets.carry_past_days(bigint, date, date) IS
    'The final rows of days p_from..p_to with the tickets changed since version p_captured_version_id swapped in.';

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
    -- Days that ended before the previous capture's day began: their rows
    -- are final and only the changed tickets can move them.
    v_carry_to := tickets.eat_day(v_state.captured_now) - 1;
    IF v_state.captured_now <= p_now AND v_from <= v_carry_to THEN
        SELECT tickets.eat_day(min(valid_from)) INTO v_first_known FROM tickets.inc_versions
         WHERE version_id <= v_state.captured_version_id;
        SELECT count(*) = greatest(v_carry_to - greatest(v_from, v_first_known) + 1, 0) INTO v_carry
          FROM tickets.inc_daily_snapshot
         WHERE snapshot_date BETWEEN greatest(v_from, v_first_known) AND v_carry_to
           AND as_of = tickets.eat_day_end(snapshot_date);
    END IF;
    v_rest_from := CASE WHEN v_carry THEN v_carry_to + 1 ELSE v_from END;
    -- The row to carry forward must be the one the previous capture wrote.
    v_same_day := coalesce(v_rest_from = v_today AND v_state.captured_now <= p_now, false)
        AND NOT EXISTS (SELECT FROM tickets.inc_versions
                         WHERE valid_from >= v_state.captured_now
                           AND version_id <= v_state.captured_version_id)
        AND EXISTS (SELECT FROM tickets.inc_daily_snapshot
                     WHERE snapshot_date = v_today AND as_of = v_state.captured_now);
    INSERT INTO tickets.inc_daily_snapshot AS s
    SELECT * FROM tickets.carry_past_days(v_state.captured_version_id, v_from, v_carry_to)
     WHERE v_carry
    UNION ALL
    SELECT * FROM tickets.same_day_snapshot(v_state.captured_version_id, v_state.captured_now, p_now)
     WHERE v_same_day
    UNION ALL
    SELECT * FROM tickets.compute_daily_snapshots(v_rest_from, v_today, p_now)
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
