-- Daily rows carried forward by the changed tickets only. A delta whose
-- file is stamped long ago (a late file, a replay, a test stream dated months
-- back) made the capture recompute every day from that stamp through today,
-- and each day's count went over every open ticket: on 1,000,000 tickets
-- (451,713 open) a 20,000-row delta stamped 170 days back spent 22.6 s
-- recomputing 171 daily rows.
--
-- A day that ended before the previous capture's day began has a final row:
-- the state at the day's end of the versions known then. New versions change
-- it only through the tickets they belong to. The same holds for today's row
-- when the previous capture was earlier today and nothing known then is
-- stamped after it (19's same-day condition), except that its instant moves:
-- the other open tickets whose 48 hours ran out in between are added by an
-- index range on the clock (inc_clock_cover_idx).
--
-- tickets.carry_snapshots takes each such row and, for the changed tickets
-- alone, removes their part as the previous capture knew them (their
-- versions up to its watermark, read at its instant) and adds their part now
-- (all their versions, read at this one). Both parts come from one pass over
-- those tickets' versions, fetched by key, with the interval marks of
-- compute_daily_snapshots: open, past 48 hours, on the first-seen clock, per
-- cluster, plus the day of each first version (opened) and of each closure
-- (closed_today, by the rule derive_closures applies). Cost: the changed
-- tickets' versions plus days x clusters; the other tickets are not read.
-- It replaces same_day_snapshot (19, 21), which read each changed ticket's
-- versions four times and only served today's row.
--
-- capture_history carries the days from the oldest new version's through
-- the last final one (today's when the same-day condition holds); the rest
-- (a new day's rows) take the full computation as before. A day in the range
-- with no row to carry sends the whole range to the full computation, except
-- days before the first version known then, whose row was empty. The history
-- tests compare every row with a full recompute, a rebuild and the model.

CREATE FUNCTION tickets.carry_snapshots(p_captured_version_id bigint, p_captured_now timestamptz,
                                        p_from date, p_to date, p_now timestamptz)
RETURNS SETOF tickets.inc_daily_snapshot LANGUAGE sql STABLE SET jit = off AS $$
    WITH changed AS MATERIALIZED (
        SELECT DISTINCT ticket_id FROM tickets.inc_versions WHERE version_id > p_captured_version_id
    ), fields AS MATERIALIZED (
        -- Read from raw once, before the versions are ordered (narrow sorts);
        -- by key, one changed ticket at a time, in key order so the primary
        -- key serves it: the planner cannot tell a few thousand changed
        -- tickets from a million and would scan every version.
        SELECT c.ticket_id, v.valid_from, v.version_id <= p_captured_version_id AS known,
               tickets.to_bool(v.raw ->> 'is_actionable') AS actionable,
               tickets.sla_clock(v.raw) + interval '48 hours' AS breach_at,
               (tickets.eat_ts(v.raw ->> 'created_at_service') IS NULL)::int AS fallback,
               coalesce(tickets.clean_text(v.raw ->> 'cluster'), '(blank)') AS cluster
          FROM changed c
         CROSS JOIN LATERAL (SELECT p.valid_from, p.version_id, p.raw FROM tickets.inc_versions p
                              WHERE p.ticket_id = c.ticket_id ORDER BY p.valid_from) AS v
    ), spans AS (
        -- Each ticket's versions as the previous capture knew them, read at
        -- its instant (sign -1), and as they are now, read at this one (+1),
        -- each with the next one's stamp and whether the one before it was
        -- closed (NULL: it is the first).
        SELECT sign, at, cluster, fallback, actionable, valid_from, breach_at,
               lead(valid_from) OVER w AS valid_to,
               lag(actionable IS FALSE) OVER w AS was_closed
          FROM (SELECT -1 AS sign, p_captured_now AS at, * FROM fields WHERE known
                UNION ALL
                SELECT 1, p_now, * FROM fields) AS f
        WINDOW w AS (PARTITION BY sign, ticket_id ORDER BY valid_from)
    ), seen AS (
        SELECT * FROM spans WHERE valid_from < at
    ), covers AS (
        -- As in compute_daily_snapshots, with each part's own instant: a
        -- version is the state at as_of(D) when valid_from < as_of(D) <= valid_to.
        SELECT sign, cluster, fallback,
               greatest(tickets.eat_day(valid_from), p_from) AS lo,
               least(CASE WHEN valid_to IS NULL OR valid_to >= at THEN p_to
                          ELSE tickets.eat_day(valid_to) - 1 END, p_to) AS hi,
               CASE WHEN breach_at < at
                    THEN greatest(tickets.eat_day(breach_at), tickets.eat_day(valid_from), p_from) END AS breach_lo
          FROM seen
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
        SELECT tickets.eat_day(valid_from) AS day,
               sum(sign) FILTER (WHERE was_closed IS NULL) AS opened,
               sum(sign) FILTER (WHERE actionable IS FALSE AND was_closed IS NOT TRUE) AS closed
          FROM seen
         WHERE tickets.eat_day(valid_from) BETWEEN p_from AND p_to
         GROUP BY 1
    ), crossed AS (
        -- Only the last day's instant can move (today's, from the previous
        -- capture's to this one): the unchanged open tickets whose 48 hours
        -- ran out in between. An empty range for a day that had ended.
        SELECT count(*) AS n
          FROM tickets.inc i
         WHERE coalesce(i.created_at_service, i.first_seen_at)
                   >= least(p_captured_now, tickets.eat_day_end(p_to)) - interval '48 hours'
           AND coalesce(i.created_at_service, i.first_seen_at)
                   < least(p_now, tickets.eat_day_end(p_to)) - interval '48 hours'
           AND i.is_actionable
           AND NOT EXISTS (SELECT FROM changed c WHERE c.ticket_id = i.ticket_id)
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
    SELECT d.day, least(tickets.eat_day_end(d.day), p_now),
           (coalesce(o.open_total, 0) + coalesce(c.open, 0))::integer,
           (coalesce(o.open_breached, 0) + coalesce(c.breached, 0)
            + CASE WHEN d.day = p_to THEN (SELECT n FROM crossed) ELSE 0 END)::integer,
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
COMMENT ON FUNCTION tickets.carry_snapshots(bigint, timestamptz, date, date, timestamptz) IS
    'The rows of days p_from..p_to carried from the capture at p_captured_now to p_now: the tickets changed since version p_captured_version_id swapped in.';

DROP FUNCTION tickets.same_day_snapshot(bigint, timestamptz, timestamptz);

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
BEGIN
    SELECT * INTO STRICT v_state FROM tickets.history_state FOR UPDATE;
    SELECT coalesce(max(version_id), 0) INTO v_upto FROM tickets.inc_versions;
    IF v_upto > v_state.captured_version_id THEN
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
    SELECT * FROM tickets.carry_snapshots(v_state.captured_version_id, v_state.captured_now,
                                          v_from, v_carry_to, p_now)
     WHERE v_carry
    UNION ALL
    SELECT * FROM tickets.compute_daily_snapshots(v_rest_from, v_today, p_now)
     WHERE v_rest_from <= v_today
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
REVOKE EXECUTE ON FUNCTION tickets.carry_snapshots(bigint, timestamptz, date, date, timestamptz) FROM PUBLIC;
