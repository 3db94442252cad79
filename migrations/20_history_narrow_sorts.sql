-- History capture without sorting raw rows. Both passes over the versions
-- ordered each ticket's versions with the whole raw jsonb in the sort: a first
-- capture after a 1,000,000-row baseline sorted about 1 GB twice. The fields
-- are now read from raw first and only narrow rows are sorted; a closure's
-- raw is fetched afterwards by key, for the versions that are closures.
-- derive_closures also lost an OR that hid the touched tickets from the
-- planner: a 2,000-row delta scanned all million versions (~3.7 s) to find
-- the 6,000 it needed. Where a pass serves both a first capture (every
-- ticket) and a small one (a few thousand), it has one branch for each,
-- switched at run time, because one plan cannot suit both. Same rows as before; the history tests compare the
-- capture, a rebuild and an independent model.

CREATE OR REPLACE FUNCTION tickets.derive_closures(p_after_version_id bigint, p_upto_version_id bigint)
RETURNS integer LANGUAGE sql SET jit = off AS $$
    WITH touched AS MATERIALIZED (
        SELECT DISTINCT ticket_id FROM tickets.inc_versions
         WHERE version_id > p_after_version_id AND version_id <= p_upto_version_id
    ), scope AS (
        -- Every version on a first capture, else the touched tickets' versions by key.
        SELECT v.ticket_id, v.valid_from, tickets.to_bool(v.raw ->> 'is_actionable') IS FALSE AS closed
          FROM tickets.inc_versions v
         WHERE p_after_version_id = 0
        UNION ALL
        SELECT v.ticket_id, v.valid_from, tickets.to_bool(v.raw ->> 'is_actionable') IS FALSE
          FROM touched t JOIN tickets.inc_versions v ON v.ticket_id = t.ticket_id
         WHERE p_after_version_id <> 0
    ), seq AS (
        SELECT ticket_id, valid_from, closed,
               lag(closed) OVER (PARTITION BY ticket_id ORDER BY valid_from) AS was_closed
          FROM scope
    ), events AS MATERIALIZED (
        -- Fetched by key, one closure at a time: the planner cannot tell a
        -- few hundred closures from half a million and would hash every version.
        SELECT s.ticket_id, s.valid_from, s.was_closed, v.source_key, v.raw
          FROM seq s
         CROSS JOIN LATERAL (
               SELECT p.source_key, p.raw FROM tickets.inc_versions p
                WHERE p.ticket_id = s.ticket_id AND p.valid_from = s.valid_from
                LIMIT 1) AS v  -- the key is unique; LIMIT keeps this a lookup
         WHERE s.closed AND s.was_closed IS NOT TRUE
    ), dropped_any AS (
        -- Two deletes, one of which the parameter switches off: on a first
        -- capture a scan, else the touched tickets' events by key.
        DELETE FROM tickets.closure_events e
         WHERE p_after_version_id = 0
           AND NOT EXISTS (SELECT 1 FROM events n
                            WHERE n.ticket_id = e.ticket_id AND n.valid_from = e.observed_at)
    ), dropped_touched AS (
        DELETE FROM tickets.closure_events e
         WHERE p_after_version_id <> 0
           AND e.ticket_id IN (SELECT ticket_id FROM touched)
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
               coalesce(jsonb_object_agg(cluster, open) FILTER (WHERE open > 0), '{}'::jsonb) AS by_cluster
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
           coalesce(cl.n, 0)::integer, coalesce(o.by_cluster, '{}'::jsonb), now()
      FROM days d
      LEFT JOIN open_counts o USING (day)
      LEFT JOIN opened op USING (day)
      LEFT JOIN closed cl USING (day)
     ORDER BY d.day
$$;
