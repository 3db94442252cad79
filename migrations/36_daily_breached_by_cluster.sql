-- Breached tickets per cluster in the daily history, so a trend filtered to
-- one cluster reports that cluster's breached_end instead of null.
--
-- tickets.inc_daily_snapshot gains breached_by_cluster: the open tickets
-- past their 48 hours at the row's as_of, per cluster, beside
-- open_by_cluster (same keys, clusters with none left out). Every path that
-- writes a daily row already counts breaches per cluster before summing
-- them, so each is re-created with that count kept:
-- - compute_daily_snapshots (20): the full computation;
-- - carry_snapshots (29): the old row's counts plus the changed tickets'
--   difference, and on the last day the unchanged tickets whose 48 hours ran
--   out since the previous capture, now grouped by cluster;
-- - first_load_snapshots (30): the first load's rows;
-- - capture_history (30): writes the column on conflict too, and carries a
--   row only when it has the figure, so rows written before this migration
--   are recomputed in full rather than carried as unknown.
-- Rows written before this migration keep NULL (unknown) until a capture
-- recomputes their day; `fleettickets history rebuild` fills every day.
--
-- reporting.fn_inc_trends reads it: with a cluster filter, breached_end is
-- that cluster's figure (null for days before the first capture and for
-- rows that lack it), and the clusters' figures add up to the all-cluster
-- open_breached. Its body is otherwise 31's.

ALTER TABLE tickets.inc_daily_snapshot ADD COLUMN breached_by_cluster jsonb;
COMMENT ON COLUMN tickets.inc_daily_snapshot.breached_by_cluster IS
    'Open tickets past their 48 hours at as_of, per cluster (as open_by_cluster; clusters with none left out). NULL: written before it was kept.';

CREATE OR REPLACE FUNCTION tickets.compute_daily_snapshots(p_from date, p_to date, p_now timestamptz DEFAULT now())
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
    ), changed AS MATERIALIZED (
        -- Tickets with a version on or after the first day computed.
        SELECT DISTINCT v.ticket_id FROM tickets.inc_versions v
         WHERE v.valid_from >= (SELECT min(day_start) FROM days)
    ), facts AS (
        -- The fields are read from raw before the versions are ordered, so
        -- the sort carries a few narrow columns, not every raw row.
        SELECT s.valid_from, s.valid_to, s.breach_at, s.fallback, s.cluster
          FROM (SELECT n.valid_from, n.actionable, n.breach_at, n.fallback, n.cluster,
                       lead(n.valid_from) OVER (PARTITION BY n.ticket_id ORDER BY n.valid_from) AS valid_to
                  FROM (SELECT v.ticket_id, v.valid_from,
                               tickets.to_bool(v.raw ->> 'is_actionable') AS actionable,
                               tickets.sla_clock(v.raw) + interval '48 hours' AS breach_at,
                               (tickets.eat_ts(v.raw ->> 'created_at_service') IS NULL)::int AS fallback,
                               coalesce(tickets.clean_text(v.raw ->> 'cluster'), '(blank)') AS cluster
                          FROM tickets.inc_versions v
                         WHERE v.ticket_id IN (SELECT ticket_id FROM changed)
                           AND (SELECT count(*) FROM changed) > 50000
                        UNION ALL
                        -- Few changed tickets (every run but the first of a
                        -- day's): their versions by key, not a scan of all.
                        SELECT v.ticket_id, v.valid_from,
                               tickets.to_bool(v.raw ->> 'is_actionable'),
                               tickets.sla_clock(v.raw) + interval '48 hours',
                               (tickets.eat_ts(v.raw ->> 'created_at_service') IS NULL)::int,
                               coalesce(tickets.clean_text(v.raw ->> 'cluster'), '(blank)')
                          FROM changed c JOIN tickets.inc_versions v ON v.ticket_id = c.ticket_id
                         WHERE (SELECT count(*) FROM changed) <= 50000
                        OFFSET 0) AS n) s
         WHERE s.actionable AND s.valid_from < p_now
    ), current_groups AS (
        -- Tickets unchanged over the days: all open tickets counted in one
        -- index-only pass, less the changed ones (few, found by key), which the
        -- version path counts instead. Subtracting beats an anti-join over
        -- every ticket. Grouped by what differs per day: whether and from which
        -- day a ticket is past its 48 hours.
        SELECT cluster, breach_day, sum(open) AS open, sum(fallback) AS fallback
          FROM (SELECT coalesce(i.cluster, '(blank)') AS cluster,
                       tickets.breach_day(i.created_at_service, i.first_seen_at, p_now) AS breach_day,
                       count(*) AS open, sum((i.created_at_service IS NULL)::int) AS fallback
                  FROM tickets.inc i
                 WHERE i.is_actionable AND (SELECT count(*) FROM days) > 0
                 GROUP BY 1, 2
                UNION ALL
                SELECT coalesce(i.cluster, '(blank)'),
                       tickets.breach_day(i.created_at_service, i.first_seen_at, p_now),
                       -count(*), -sum((i.created_at_service IS NULL)::int)
                  FROM changed c JOIN tickets.inc i ON i.ticket_id = c.ticket_id
                 WHERE i.is_actionable
                 GROUP BY 1, 2) AS signed
         GROUP BY 1, 2
    ), current_counts AS (
        SELECT d.day, g.cluster, sum(g.open) AS open, sum(g.fallback) AS fallback,
               coalesce(sum(g.open) FILTER (WHERE g.breach_day <= d.day), 0) AS breached
          FROM days d CROSS JOIN current_groups g
         GROUP BY d.day, g.cluster
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
               coalesce(jsonb_object_agg(cluster, open) FILTER (WHERE open > 0), '{}'::jsonb) AS by_cluster,
               coalesce(jsonb_object_agg(cluster, breached) FILTER (WHERE breached > 0), '{}'::jsonb)
                   AS breached_by_cluster
          FROM (SELECT day, cluster, sum(open) AS open, sum(fallback) AS fallback,
                       sum(breached) AS breached
                  FROM (SELECT * FROM per_cluster UNION ALL SELECT * FROM current_counts) AS both_paths
                 GROUP BY day, cluster) AS counts
         GROUP BY day
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
           coalesce(cl.n, 0)::integer, coalesce(o.by_cluster, '{}'::jsonb), now(),
           coalesce(o.breached_by_cluster, '{}'::jsonb)
      FROM days d
      LEFT JOIN open_counts o USING (day)
      LEFT JOIN opened op USING (day)
      LEFT JOIN closed cl USING (day)
     ORDER BY d.day
$$;

CREATE OR REPLACE FUNCTION tickets.carry_snapshots(p_captured_version_id bigint, p_captured_now timestamptz,
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
        SELECT coalesce(i.cluster, '(blank)') AS cluster, count(*) AS n
          FROM tickets.inc i
         WHERE coalesce(i.created_at_service, i.first_seen_at)
                   >= least(p_captured_now, tickets.eat_day_end(p_to)) - interval '48 hours'
           AND coalesce(i.created_at_service, i.first_seen_at)
                   < least(p_now, tickets.eat_day_end(p_to)) - interval '48 hours'
           AND i.is_actionable
           AND NOT EXISTS (SELECT FROM changed c WHERE c.ticket_id = i.ticket_id)
         GROUP BY 1
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
    ), breached_by_cluster AS (
        -- The same sums for the breached tickets, with the last day's crossings.
        SELECT day, jsonb_object_agg(cluster, breached ORDER BY cluster) FILTER (WHERE breached > 0)
                        AS breached_by_cluster
          FROM (SELECT day, cluster, sum(breached) AS breached
                  FROM (SELECT o.snapshot_date AS day, e.key AS cluster, e.value::bigint AS breached
                          FROM old o, jsonb_each_text(o.breached_by_cluster) AS e
                        UNION ALL
                        SELECT day, cluster, breached FROM per_cluster
                        UNION ALL
                        SELECT p_to, cluster, n FROM crossed) AS counts
                 GROUP BY day, cluster) AS sums
         GROUP BY day
    )
    SELECT d.day, least(tickets.eat_day_end(d.day), p_now),
           (coalesce(o.open_total, 0) + coalesce(c.open, 0))::integer,
           (coalesce(o.open_breached, 0) + coalesce(c.breached, 0)
            + CASE WHEN d.day = p_to THEN (SELECT coalesce(sum(n), 0) FROM crossed) ELSE 0 END)::integer,
           (coalesce(o.open_on_first_seen_clock, 0) + coalesce(c.fallback, 0))::integer,
           (coalesce(o.opened, 0) + coalesce(f.opened, 0))::integer,
           (coalesce(o.closed_today, 0) + coalesce(f.closed, 0))::integer,
           coalesce(b.open_by_cluster, '{}'::jsonb), now(),
           -- unknown stays unknown: an old row written before the figure was kept
           CASE WHEN o.snapshot_date IS NULL OR o.breached_by_cluster IS NOT NULL
                THEN coalesce(bb.breached_by_cluster, '{}'::jsonb) END
      FROM days d
      LEFT JOIN old o ON o.snapshot_date = d.day
      LEFT JOIN changes c ON c.day = d.day
      LEFT JOIN firsts f ON f.day = d.day
      LEFT JOIN by_cluster b ON b.day = d.day
      LEFT JOIN breached_by_cluster bb ON bb.day = d.day
     ORDER BY d.day
$$;

CREATE OR REPLACE FUNCTION tickets.first_load_snapshots(p_at timestamptz, p_now timestamptz)
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
               jsonb_object_agg(cluster, open ORDER BY cluster) AS by_cluster,
               jsonb_object_agg(cluster, breached ORDER BY cluster) FILTER (WHERE breached > 0)
                   AS breached_by_cluster
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
           coalesce(o.by_cluster, '{}'::jsonb), now(), coalesce(o.breached_by_cluster, '{}'::jsonb)
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
           AND as_of = least(tickets.eat_day_end(snapshot_date), v_state.captured_now)
           AND breached_by_cluster IS NOT NULL;
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
           open_by_cluster = EXCLUDED.open_by_cluster, computed_at = EXCLUDED.computed_at,
           breached_by_cluster = EXCLUDED.breached_by_cluster;
    GET DIAGNOSTICS v_days = ROW_COUNT;
    UPDATE tickets.history_state
       SET captured_version_id = v_upto, captured_now = p_now, updated_at = now();
    RETURN QUERY SELECT v_closures, v_days, v_upto - v_state.captured_version_id;
END
$$;

CREATE OR REPLACE FUNCTION reporting.fn_inc_trends(
    p_from    date DEFAULT NULL,
    p_to      date DEFAULT NULL,
    p_grain   text DEFAULT 'day',
    p_cluster text DEFAULT NULL,
    p_now     timestamptz DEFAULT now())
RETURNS json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET plan_cache_mode = force_custom_plan
SET work_mem = '64MB'
SET jit = off
AS $$
DECLARE
    max_periods CONSTANT integer := 400;
    v_grain text := lower(btrim(p_grain));
    v_cluster text := lower(nullif(btrim(p_cluster), ''));
    v_step interval;
    v_periods integer;
    payload json;
BEGIN
    PERFORM reporting.inc_check_range(p_from, p_to);
    v_step := CASE v_grain WHEN 'day' THEN interval '1 day' WHEN 'week' THEN interval '1 week'
                           WHEN 'month' THEN interval '1 month' END;
    IF v_step IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('p_grain must be day, week or month (got %L)', p_grain),
            HINT = 'Use one of: day, week (ISO, Monday first), month.';
    END IF;
    v_periods := CASE v_grain
        WHEN 'day' THEN p_to - p_from + 1
        WHEN 'week' THEN (date_trunc('week', p_to::timestamp)::date - date_trunc('week', p_from::timestamp)::date) / 7 + 1
        ELSE (extract(year FROM p_to) - extract(year FROM p_from)) * 12
             + extract(month FROM p_to) - extract(month FROM p_from) + 1 END;
    IF v_periods > max_periods THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('p_grain %L gives %s periods from p_from (%s) to p_to (%s), more than %s',
                             v_grain, v_periods, p_from, p_to, max_periods),
            HINT = 'Use a coarser p_grain (week or month) or a shorter range.';
    END IF;
    WITH periods AS (
        SELECT w.from_date AS period_start, w.to_date AS period_end, w.from_ts, w.to_ts
          FROM generate_series(date_trunc(v_grain, p_from::timestamp), p_to::timestamp, v_step) AS s
         CROSS JOIN LATERAL reporting.inc_window('custom', greatest(s::date, p_from),
                                                 least((s + v_step)::date - 1, p_to), p_now) AS w
    ), series AS (
        SELECT p.period_start, p.period_end, k.created, c.closed, c.mttrs, c.compliant, c.breached,
               c.c48_within, c.c48_breached,
               CASE WHEN d.snapshot_date IS NULL THEN NULL
                    WHEN v_cluster IS NULL THEN d.open_total
                    WHEN d.open_by_cluster IS NULL THEN NULL
                    ELSE (SELECT coalesce(sum(b.value::bigint), 0) FROM jsonb_each_text(d.open_by_cluster) b
                           WHERE lower(b.key) = v_cluster) END AS backlog_end,
               CASE WHEN d.snapshot_date IS NULL THEN NULL
                    WHEN v_cluster IS NULL THEN d.open_breached
                    WHEN d.breached_by_cluster IS NULL THEN NULL
                    ELSE (SELECT coalesce(sum(b.value::bigint), 0) FROM jsonb_each_text(d.breached_by_cluster) b
                           WHERE lower(b.key) = v_cluster) END AS breached_end
          FROM periods p
         CROSS JOIN LATERAL (
               SELECT count(*) AS closed,
                      array_agg(i.mttr) FILTER (WHERE i.mttr IS NOT NULL) AS mttrs,
                      count(*) FILTER (WHERE reporting.closure_sla(i.sla_status) = 'compliant') AS compliant,
                      count(*) FILTER (WHERE reporting.closure_sla(i.sla_status) = 'breached') AS breached,
                      count(*) FILTER (WHERE reporting.closure_contract_48h(i.closed_at, i.created_at_service,
                                                                            i.first_seen_at) = 'within') AS c48_within,
                      count(*) FILTER (WHERE reporting.closure_contract_48h(i.closed_at, i.created_at_service,
                                                                            i.first_seen_at) = 'breached') AS c48_breached
                 FROM reporting.inc_closed_between(p.from_ts, p.to_ts, v_cluster, NULL) i) c
         CROSS JOIN LATERAL (
               SELECT count(*) AS created
                 FROM reporting.inc_created_between(p.from_ts, p.to_ts, v_cluster, NULL) i) k
          LEFT JOIN tickets.inc_daily_snapshot d ON d.snapshot_date = p.period_end
    )
    SELECT json_build_object(
        'grain', v_grain,
        'from', p_from,
        'to', p_to,
        'cluster', nullif(btrim(p_cluster), ''),
        'freshness', reporting.inc_freshness(p_now),
        'series', coalesce((
            SELECT json_agg(json_build_object(
                       'period_start', s.period_start,
                       'period_end', s.period_end,
                       'created', s.created,
                       'closed', s.closed,
                       'closure_ratio', reporting.ratio(s.closed, s.created),
                       'backlog_end', s.backlog_end,
                       'breached_end', s.breached_end,
                       'mttr_minutes', reporting.mttr_summary(s.mttrs),
                       'sla_compliance', reporting.sla_summary(s.closed, s.compliant, s.breached),
                       'contract_48h', reporting.contract_48h_summary(s.closed, s.c48_within, s.c48_breached))
                   ORDER BY s.period_start)
              FROM series s), '[]'::json))
      INTO payload;
    RETURN payload;
END
$$;
COMMENT ON FUNCTION reporting.fn_inc_trends(date, date, text, text, timestamptz) IS
    'Trends (json): created, closed, backlog, MTTR and SLA per day, week or month. See docs/dashboard-api-contract.md.';

-- CREATE OR REPLACE resets the settings: the entry point's pinned search_path again (as in 31).
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION reporting.fn_inc_trends(date, date, text, text, timestamptz) '
                   'SET search_path = pg_catalog, %I, pg_temp',
                   (SELECT n.nspname FROM pg_extension e
                      JOIN pg_namespace n ON n.oid = e.extnamespace
                     WHERE e.extname = 'postgis'));
END
$$;

-- Internal routines and an entry point granted by setup_reader_role: none for PUBLIC.
REVOKE EXECUTE ON FUNCTION tickets.compute_daily_snapshots(date, date, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tickets.carry_snapshots(bigint, timestamptz, date, date, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tickets.first_load_snapshots(timestamptz, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tickets.capture_history(timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION reporting.fn_inc_trends(date, date, text, text, timestamptz) FROM PUBLIC;
