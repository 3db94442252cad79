-- Trends and team closure attribution: reporting.fn_inc_trends (created,
-- closed, backlog, MTTR and SLA per day, ISO week or month) and
-- reporting.fn_team_closures (the closures of a range credited to the team
-- that closed them), both read entry points like the dashboard
-- (docs/dashboard-api-contract.md).
--
-- One definition. A trends period must report exactly what the dashboard
-- reports for the same custom window, so the per-window rules move out of
-- reporting.inc_dashboard_payload into functions that the dashboard, the
-- trends and the team closures all call:
-- - inc_closed_between / inc_created_between: which tickets a window's
--   closures and creations are (SQL set-returning functions the planner
--   inlines, so the dashboard keeps its index scans);
-- - closure_sla / closure_contract_48h: how one closure counts for the SLA
--   and for the 48 h contract;
-- - mttr_summary, sla_summary, contract_48h_summary: the payload objects
--   built from those counts (median and p90, unknowns, rates);
-- - inc_freshness: the freshness object.
-- inc_dashboard_payload is re-created with the same signature and settings;
-- its payload is the same, byte for byte (a test compares it with migration
-- 17's body on a loaded database).
--
-- A trends period is the dashboard's custom window over the period's first
-- and last day (reporting.inc_window), so the series adds up to the dashboard
-- over the whole range. Each period is read by an index range on closed_at
-- and on the SLA clock, all in one statement: the range is read once, never
-- one dashboard call per period.
--
-- Team credit comes from the history: the team of the newest closure event
-- of the ticket (the first version that showed its current closure), so a
-- closed ticket re-assigned by a later export stays with the team that
-- closed it. A ticket with no closure event (history not captured since it
-- closed) falls back to its current team.
--
-- Grants: the reader role may call exactly the SECURITY DEFINER functions of
-- reporting. tickets.setup_reader_role() now grants from that list instead of
-- naming each function, so a later entry point only has to be created
-- SECURITY DEFINER and the function called again.

-- The tickets closed in [p_from_ts, p_to_ts): what every closure figure counts.
CREATE FUNCTION reporting.inc_closed_between(p_from_ts timestamptz, p_to_ts timestamptz,
                                             p_cluster_key text, p_status text)
RETURNS SETOF tickets.inc LANGUAGE sql STABLE AS $$
    SELECT * FROM tickets.inc i
     WHERE i.closed_at >= p_from_ts AND i.closed_at < p_to_ts
       AND i.is_actionable IS NOT TRUE
       AND (p_cluster_key IS NULL OR lower(i.cluster) = p_cluster_key)
       AND (p_status IS NULL OR i.normalized_status = p_status)
$$;

-- The tickets whose SLA clock started in [p_from_ts, p_to_ts): the creations.
CREATE FUNCTION reporting.inc_created_between(p_from_ts timestamptz, p_to_ts timestamptz,
                                              p_cluster_key text, p_status text)
RETURNS SETOF tickets.inc LANGUAGE sql STABLE AS $$
    SELECT * FROM tickets.inc i
     WHERE coalesce(i.created_at_service, i.first_seen_at) >= p_from_ts
       AND coalesce(i.created_at_service, i.first_seen_at) < p_to_ts
       AND (p_cluster_key IS NULL OR lower(i.cluster) = p_cluster_key)
       AND (p_status IS NULL OR i.normalized_status = p_status)
$$;

-- How a closure counts for SLA compliance: the feed's sla_status, any case.
CREATE FUNCTION reporting.closure_sla(p_sla_status text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE lower(p_sla_status) WHEN 'compliant' THEN 'compliant' WHEN 'breached' THEN 'breached' END
$$;

-- How a closure counts for the 48 h contract: closed_at against the SLA clock.
CREATE FUNCTION reporting.closure_contract_48h(p_closed_at timestamptz, p_created_at_service timestamptz,
                                               p_first_seen_at timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_closed_at - coalesce(p_created_at_service, p_first_seen_at) <= interval '48 hours'
                THEN 'within'
                WHEN p_closed_at - coalesce(p_created_at_service, p_first_seen_at) > interval '48 hours'
                THEN 'breached' END
$$;

-- The three payload builders are STABLE like json_build_object itself, so the
-- planner may inline them.
-- {median, p90, samples} of a set of closures' mttr values (whole minutes).
CREATE FUNCTION reporting.mttr_summary(p_mttrs integer[]) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT json_build_object(
               'median', round(s.pct[1]::numeric)::int,
               'p90', round(s.pct[2]::numeric)::int,
               'samples', coalesce(cardinality(p_mttrs), 0))
      FROM (SELECT percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY v) AS pct
              FROM unnest(p_mttrs) v) s
$$;

-- {compliant, breached, unknown, rate} of p_closed closures.
CREATE FUNCTION reporting.sla_summary(p_closed bigint, p_compliant bigint, p_breached bigint) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT json_build_object(
               'compliant', p_compliant, 'breached', p_breached,
               'unknown', p_closed - p_compliant - p_breached,
               'rate', reporting.ratio(p_compliant, p_compliant + p_breached))
$$;

-- {within, breached, unknown, rate} of p_closed closures.
CREATE FUNCTION reporting.contract_48h_summary(p_closed bigint, p_within bigint, p_breached bigint) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT json_build_object(
               'within', p_within, 'breached', p_breached,
               'unknown', p_closed - p_within - p_breached,
               'rate', reporting.ratio(p_within, p_within + p_breached))
$$;

-- How fresh the data is at p_now: the last ingest and the newest file applied.
CREATE FUNCTION reporting.inc_freshness(p_now timestamptz) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
               'last_ingest_at', reporting.eat_iso(meta.last_ingest_at),
               'minutes_since_ingest',
                   floor(extract(epoch FROM p_now - meta.last_ingest_at) / 60)::int,
               'source_max_key', meta.source_max_key,
               'source_max_ts', reporting.eat_iso(meta.source_max_ts),
               'updated_at', reporting.eat_iso(meta.updated_at))
      FROM (SELECT 1) AS one
      LEFT JOIN (SELECT tickets.eat_ts(m.metadata ->> 'last_ingest_at') AS last_ingest_at,
                        nullif(m.metadata ->> 'source_max_key', '') AS source_max_key,
                        tickets.eat_ts(m.metadata ->> 'source_max_ts') AS source_max_ts,
                        m.updated_at
                   FROM tickets.import_meta m WHERE m.dataset = 'inc') meta ON true
$$;

-- The dashboard payload, now built from the rules above (same payload).
CREATE OR REPLACE FUNCTION reporting.inc_dashboard_payload(
    p_cluster text DEFAULT NULL,
    p_status  text DEFAULT NULL,
    p_window  text DEFAULT 'today',
    p_from    date DEFAULT NULL,
    p_to      date DEFAULT NULL,
    p_max_features integer DEFAULT 10000,
    p_now     timestamptz DEFAULT now())
RETURNS json
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_custom_plan
SET work_mem = '64MB'
AS $$
DECLARE
    w record;
    v_cluster text := lower(nullif(btrim(p_cluster), ''));
    v_status text := reporting.inc_status_filter(p_status);
    payload json;
    v_hours_cut numeric;
BEGIN
    w := reporting.inc_window(p_window, p_from, p_to, p_now);
    IF p_max_features < 1 THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('p_max_features must be at least 1 (got %s)', p_max_features),
            HINT = 'Pass NULL for no cap; the default is 10000 features per collection.';
    END IF;
    -- The open features are the p_max_features most urgent mapped tickets.
    -- Urgency (hours_open) only falls as the clock moves later, so walking
    -- inc_open_cover_idx in clock order finds the hours_open of the last one
    -- without computing it for every open ticket; the feature query below
    -- then only ranks the tickets at least that urgent. The bound keeps 0.01 h
    -- of slack for the rounding of hours_open, and ties are ranked there by
    -- ticket_id as before.
    IF p_max_features IS NOT NULL THEN
        SELECT o.hours_open INTO v_hours_cut
          FROM tickets.inc_open_sla_at(p_now) o
         WHERE (v_cluster IS NULL OR lower(o.cluster) = v_cluster)
           AND (v_status IS NULL OR o.normalized_status = v_status)
           AND o.latitude IS NOT NULL
         ORDER BY o.sla_clock_at
        OFFSET p_max_features - 1 LIMIT 1;
    END IF;
    -- Each set is read once and grouped every way the payload needs it in the
    -- same pass (g = grouping() tells the groupings apart: 7 is the whole set,
    -- 3 by cluster, 5 by owner, 6 by team).
    WITH open_groups AS (
        SELECT grouping(o.cluster, o.owner, o.assigned_team) AS g, o.cluster, o.owner, o.assigned_team,
               count(*) AS open,
               count(*) FILTER (WHERE o.sla_state = 'within') AS within,
               count(*) FILTER (WHERE o.sla_state = 'at_risk') AS at_risk,
               count(*) FILTER (WHERE o.sla_state = 'breached') AS open_breached,
               count(*) FILTER (WHERE o.sla_state = 'unknown') AS unknown,
               count(*) FILTER (WHERE o.sla_clock_source = 'created_at_service') AS by_created,
               count(*) FILTER (WHERE o.sla_clock_source = 'first_seen_at') AS by_first_seen,
               count(*) FILTER (WHERE o.sla_clock_source IS NULL) AS by_none,
               count(o.latitude) AS mapped
          FROM tickets.inc_open_sla_at(p_now) o
         WHERE (v_cluster IS NULL OR lower(o.cluster) = v_cluster)
           AND (v_status IS NULL OR o.normalized_status = v_status)
         GROUP BY GROUPING SETS ((), (o.cluster), (o.owner), (o.assigned_team))
    ), closed_groups AS (
        -- mttr values are collected per group, for the medians below
        SELECT grouping(i.cluster, i.owner, i.assigned_team) AS g,
               i.cluster, i.owner, i.assigned_team,
               count(*) AS closures,
               count(*) FILTER (WHERE i.latitude IS NOT NULL) AS mapped,
               array_agg(i.mttr) FILTER (WHERE i.mttr IS NOT NULL) AS mttrs,
               count(*) FILTER (WHERE reporting.closure_sla(i.sla_status) = 'compliant') AS compliant,
               count(*) FILTER (WHERE reporting.closure_sla(i.sla_status) = 'breached') AS breached,
               count(*) FILTER (WHERE reporting.closure_contract_48h(i.closed_at, i.created_at_service,
                                                                     i.first_seen_at) = 'within') AS c48_within,
               count(*) FILTER (WHERE reporting.closure_contract_48h(i.closed_at, i.created_at_service,
                                                                     i.first_seen_at) = 'breached') AS c48_breached
          FROM reporting.inc_closed_between(w.from_ts, w.to_ts, v_cluster, v_status) i
         GROUP BY GROUPING SETS ((), (i.cluster), (i.owner), (i.assigned_team))
    ), created_t AS (
        -- grouped on the exact spelling first (a hash on a plain column),
        -- lower() only on the dozen groups
        SELECT lower(c.cluster) AS cluster_key, max(c.cluster COLLATE "C") AS cluster, sum(c.n) AS n
          FROM (SELECT i.cluster, count(*) AS n
                  FROM reporting.inc_created_between(w.from_ts, w.to_ts, v_cluster, v_status) i
                 GROUP BY i.cluster) c
         GROUP BY 1
    ), open_stats AS (
        SELECT open AS total, within, at_risk, open_breached AS breached, unknown,
               by_created, by_first_seen, by_none, mapped
          FROM open_groups WHERE g = 7
    ), closed_stats AS (
        SELECT closures AS total, mapped, mttrs, compliant, breached, c48_within, c48_breached
          FROM closed_groups WHERE g = 7
    ), clusters AS (
        SELECT lower(u.cluster) AS cluster_key, max(u.cluster COLLATE "C") AS cluster,
               sum(u.open)::bigint AS open, sum(u.open_breached)::bigint AS open_breached,
               sum(u.closed)::bigint AS closed_in_window, sum(u.created)::bigint AS created_in_window
          FROM (SELECT cluster, open, open_breached, 0 AS closed, 0 AS created
                  FROM open_groups WHERE g = 3
                UNION ALL
                SELECT cluster, 0, 0, closures, 0 FROM closed_groups WHERE g = 3
                UNION ALL
                SELECT cluster, 0, 0, 0, n FROM created_t) u
         GROUP BY 1
    ), by_owner AS (
        SELECT u.name, sum(u.closures)::bigint AS closures, max(u.mttr_median) AS mttr_median,
               sum(u.compliant)::bigint AS compliant, sum(u.breached)::bigint AS breached,
               sum(u.open_held)::bigint AS open_held, sum(u.open_breached)::bigint AS open_breached
          FROM (SELECT owner AS name, closures,
                       (SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY v)::numeric)::int
                          FROM unnest(mttrs) v) AS mttr_median, compliant, breached,
                       0 AS open_held, 0 AS open_breached
                  FROM closed_groups WHERE g = 5
                UNION ALL
                SELECT owner, 0, NULL, 0, 0, open, open_breached FROM open_groups WHERE g = 5) u
         GROUP BY u.name
    ), by_team AS (
        SELECT u.name, sum(u.closures)::bigint AS closures, max(u.mttr_median) AS mttr_median,
               sum(u.compliant)::bigint AS compliant, sum(u.breached)::bigint AS breached,
               sum(u.open_held)::bigint AS open_held, sum(u.open_breached)::bigint AS open_breached
          FROM (SELECT assigned_team AS name, closures,
                       (SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY v)::numeric)::int
                          FROM unnest(mttrs) v) AS mttr_median, compliant, breached,
                       0 AS open_held, 0 AS open_breached
                  FROM closed_groups WHERE g = 6
                UNION ALL
                SELECT assigned_team, 0, NULL, 0, 0, open, open_breached FROM open_groups WHERE g = 6) u
         GROUP BY u.name
    )
    SELECT json_build_object(
        'generated_at', reporting.eat_iso(p_now),
        'window', json_build_object(
            'name', w.window_name,
            'from', w.from_date,
            'to', w.to_date,
            'from_ts', reporting.eat_iso(w.from_ts),
            'to_ts', reporting.eat_iso(w.to_ts),
            'time_zone', 'Africa/Nairobi'),
        'filters', json_build_object(
            'cluster', nullif(btrim(p_cluster), ''), 'status', v_status,
            'max_features', p_max_features),
        'freshness', reporting.inc_freshness(p_now),
        'metrics', (
            SELECT json_build_object(
                'open_total', os.total,
                'open_by_sla_state', json_build_object(
                    'within', os.within, 'at_risk', os.at_risk,
                    'breached', os.breached, 'unknown', os.unknown),
                'open_by_clock_source', json_build_object(
                    'created_at_service', os.by_created, 'first_seen_at', os.by_first_seen,
                    'none', os.by_none),
                'closed_in_window', cs.total,
                'created_in_window', (SELECT coalesce(sum(n), 0)::bigint FROM created_t),
                'mttr_minutes', reporting.mttr_summary(cs.mttrs),
                'sla_compliance', reporting.sla_summary(cs.total, cs.compliant, cs.breached),
                'contract_48h', reporting.contract_48h_summary(cs.total, cs.c48_within, cs.c48_breached),
                'by_cluster', coalesce((
                    SELECT json_agg(json_build_object(
                               'cluster', cl.cluster,
                               'open', cl.open,
                               'open_breached', cl.open_breached,
                               'closed_in_window', cl.closed_in_window,
                               'created_in_window', cl.created_in_window)
                           ORDER BY cl.cluster_key NULLS LAST)
                      FROM clusters cl), '[]'::json))
              FROM open_stats os, closed_stats cs),
        'engineers', json_build_object(
            'by_owner', coalesce((
                SELECT json_agg(json_build_object(
                           'owner', e.name,
                           'closures', e.closures,
                           'mttr_median_minutes', e.mttr_median,
                           'sla_compliant', e.compliant,
                           'sla_breached', e.breached,
                           'sla_compliance_rate', reporting.ratio(e.compliant, e.compliant + e.breached),
                           'open_held', e.open_held,
                           'open_breached', e.open_breached)
                       ORDER BY e.closures DESC, e.open_held DESC, e.name NULLS LAST)
                  FROM by_owner e), '[]'::json),
            'by_team', coalesce((
                SELECT json_agg(json_build_object(
                           'assigned_team', e.name,
                           'closures', e.closures,
                           'mttr_median_minutes', e.mttr_median,
                           'sla_compliant', e.compliant,
                           'sla_breached', e.breached,
                           'sla_compliance_rate', reporting.ratio(e.compliant, e.compliant + e.breached),
                           'open_held', e.open_held,
                           'open_breached', e.open_breached)
                       ORDER BY e.closures DESC, e.open_held DESC, e.name NULLS LAST)
                  FROM by_team e), '[]'::json)),
        'open', (
            SELECT json_build_object(
                'type', 'FeatureCollection',
                'tickets', os.total,
                'mapped', os.mapped,
                'unmapped', os.total - os.mapped,
                'over_limit', greatest(os.mapped - coalesce(p_max_features, os.mapped), 0),
                'features', coalesce((
                    SELECT json_agg(json_build_object(
                        'type', 'Feature',
                        'id', o.ticket_id,
                        'geometry', json_build_object(
                            'type', 'Point',
                            'coordinates', json_build_array(o.longitude, o.latitude)),
                        'properties', json_build_object(
                            'ticket_id', o.ticket_id,
                            'status', o.normalized_status,
                            'cluster', o.cluster,
                            'region', o.region,
                            'location_name', o.location_name,
                            'assigned_team', o.assigned_team,
                            'owner', o.owner,
                            'sla_state', o.sla_state,
                            'sla_clock_source', o.sla_clock_source,
                            'hours_open', o.hours_open,
                            'sla_due_at', reporting.eat_iso(o.sla_due_at),
                            'geo_source', o.geo_source))
                        ORDER BY o.hours_open DESC NULLS LAST, o.ticket_id)
                      FROM (SELECT * FROM tickets.inc_open_sla_at(p_now) o
                             WHERE (v_cluster IS NULL OR lower(o.cluster) = v_cluster)
                               AND (v_status IS NULL OR o.normalized_status = v_status)
                               AND o.latitude IS NOT NULL
                               AND (v_hours_cut IS NULL
                                    OR o.sla_clock_at <= p_now - (v_hours_cut - 0.01) * interval '1 hour')
                             ORDER BY o.hours_open DESC NULLS LAST, o.ticket_id
                             LIMIT p_max_features) o), '[]'::json))
              FROM open_stats os),
        'closed', (
            SELECT json_build_object(
                'type', 'FeatureCollection',
                'tickets', cs.total,
                'mapped', cs.mapped,
                'unmapped', cs.total - cs.mapped,
                'over_limit', greatest(cs.mapped - coalesce(p_max_features, cs.mapped), 0),
                'features', coalesce((
                    SELECT json_agg(json_build_object(
                        'type', 'Feature',
                        'id', c.ticket_id,
                        'geometry', json_build_object(
                            'type', 'Point',
                            'coordinates', json_build_array(c.longitude, c.latitude)),
                        'properties', json_build_object(
                            'ticket_id', c.ticket_id,
                            'status', c.normalized_status,
                            'cluster', c.cluster,
                            'region', c.region,
                            'location_name', c.location_name,
                            'assigned_team', c.assigned_team,
                            'owner', c.owner,
                            'closed_at', reporting.eat_iso(c.closed_at),
                            'mttr_minutes', c.mttr,
                            'sla_status', c.sla_status,
                            'geo_source', c.geo_source))
                        ORDER BY c.closed_at DESC, c.ticket_id)
                      FROM (SELECT * FROM reporting.inc_closed_between(w.from_ts, w.to_ts, v_cluster, v_status) i
                             WHERE i.latitude IS NOT NULL
                             ORDER BY i.closed_at DESC, i.ticket_id
                             LIMIT p_max_features) c), '[]'::json))
              FROM closed_stats cs)
    ) INTO payload
    FROM (SELECT 1) AS one;
    RETURN payload;
END
$$;

-- Both dates of a range, in order: the refusals the range functions share.
CREATE FUNCTION reporting.inc_check_range(p_from date, p_to date) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_from IS NULL OR p_to IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('%s must not be null', CASE WHEN p_from IS NULL THEN 'p_from' ELSE 'p_to' END),
            HINT = 'Pass both dates, inclusive EAT calendar days, e.g. p_from => ''2026-06-01'', p_to => ''2026-06-30''.';
    END IF;
    IF p_from > p_to THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('p_from (%s) is after p_to (%s)', p_from, p_to),
            HINT = 'Both dates are inclusive; for a single day pass the same date twice.';
    END IF;
END
$$;

-- Created, closed, backlog, MTTR and SLA per day, ISO week (Monday first) or
-- month from p_from to p_to (inclusive EAT days); the first and last periods
-- are clipped to the range.
CREATE FUNCTION reporting.fn_inc_trends(
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
               -- the daily rows keep breaches for all clusters only
               CASE WHEN v_cluster IS NULL THEN d.open_breached END AS breached_end
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

-- The closures of p_from..p_to (the dashboard's closed_in_window), each
-- credited to the team that held the ticket when the history first showed it
-- closed, with each team's open tickets now. Spellings of a team that differ
-- only in case or surrounding spaces are one team, named by the spelling
-- most of its tickets carry (the first in byte order on a tie).
CREATE FUNCTION reporting.fn_team_closures(
    p_from    date DEFAULT NULL,
    p_to      date DEFAULT NULL,
    p_cluster text DEFAULT NULL,
    p_now     timestamptz DEFAULT now())
RETURNS json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET plan_cache_mode = force_custom_plan
SET work_mem = '64MB'
SET jit = off
AS $$
DECLARE
    w record;
    v_cluster text := lower(nullif(btrim(p_cluster), ''));
    payload json;
BEGIN
    PERFORM reporting.inc_check_range(p_from, p_to);
    w := reporting.inc_window('custom', p_from, p_to, p_now);
    -- A ticket's newest closure event: among the events observed since the
    -- range began when it has one there (one hash join for nearly every
    -- closure of the range), else looked up by key.
    WITH recent AS (
        SELECT DISTINCT ON (e.ticket_id) e.ticket_id, e.assigned_team
          FROM tickets.closure_events e
         WHERE e.observed_at >= w.from_ts
         ORDER BY e.ticket_id, e.observed_at DESC
    ), credited AS (
        SELECT CASE WHEN r.ticket_id IS NOT NULL THEN r.assigned_team
                    WHEN e.observed_at IS NOT NULL THEN e.assigned_team
                    ELSE i.assigned_team END AS team,
               i.mttr, i.sla_status, i.closed_at, i.created_at_service, i.first_seen_at
          FROM reporting.inc_closed_between(w.from_ts, w.to_ts, v_cluster, NULL) i
          LEFT JOIN recent r ON r.ticket_id = i.ticket_id
          LEFT JOIN LATERAL (
                SELECT e.observed_at, e.assigned_team FROM tickets.closure_events e
                 WHERE r.ticket_id IS NULL AND e.ticket_id = i.ticket_id
                 ORDER BY e.observed_at DESC LIMIT 1) e ON true
    ), closed AS (
        SELECT coalesce(lower(nullif(btrim(c.team), '')), '') AS team_key,
               mode() WITHIN GROUP (ORDER BY nullif(btrim(c.team), '') COLLATE "C") AS team,
               count(*) AS closed,
               array_agg(c.mttr) FILTER (WHERE c.mttr IS NOT NULL) AS mttrs,
               count(*) FILTER (WHERE reporting.closure_sla(c.sla_status) = 'compliant') AS compliant,
               count(*) FILTER (WHERE reporting.closure_sla(c.sla_status) = 'breached') AS breached,
               count(*) FILTER (WHERE reporting.closure_contract_48h(c.closed_at, c.created_at_service,
                                                                     c.first_seen_at) = 'within') AS c48_within,
               count(*) FILTER (WHERE reporting.closure_contract_48h(c.closed_at, c.created_at_service,
                                                                     c.first_seen_at) = 'breached') AS c48_breached
          FROM credited c
         GROUP BY 1
    ), open_now AS (
        SELECT coalesce(lower(nullif(btrim(o.assigned_team), '')), '') AS team_key,
               mode() WITHIN GROUP (ORDER BY nullif(btrim(o.assigned_team), '') COLLATE "C") AS team,
               count(*) AS open_now,
               count(*) FILTER (WHERE o.sla_state = 'breached') AS open_breached_now
          FROM tickets.inc_open_sla_at(p_now) o
         WHERE v_cluster IS NULL OR lower(o.cluster) = v_cluster
         GROUP BY 1
    ), teams AS (
        SELECT coalesce(c.team_key, o.team_key) AS team_key, coalesce(c.team, o.team) AS team,
               coalesce(c.closed, 0) AS closed, c.mttrs,
               coalesce(c.compliant, 0) AS compliant, coalesce(c.breached, 0) AS breached,
               coalesce(c.c48_within, 0) AS c48_within, coalesce(c.c48_breached, 0) AS c48_breached,
               coalesce(o.open_now, 0) AS open_now, coalesce(o.open_breached_now, 0) AS open_breached_now
          FROM closed c FULL JOIN open_now o ON o.team_key = c.team_key
    )
    SELECT json_build_object(
        'from', p_from,
        'to', p_to,
        'cluster', nullif(btrim(p_cluster), ''),
        'teams', coalesce((
            SELECT json_agg(json_build_object(
                       'team', t.team,
                       'closed', t.closed,
                       'mttr_minutes', reporting.mttr_summary(t.mttrs),
                       'sla_compliance', reporting.sla_summary(t.closed, t.compliant, t.breached),
                       'contract_48h', reporting.contract_48h_summary(t.closed, t.c48_within, t.c48_breached),
                       'open_now', t.open_now,
                       'open_breached_now', t.open_breached_now)
                   ORDER BY t.team_key = '', t.closed DESC, t.open_now DESC, t.team_key)
              FROM teams t), '[]'::json))
      INTO payload;
    RETURN payload;
END
$$;
COMMENT ON FUNCTION reporting.fn_team_closures(date, date, text, timestamptz) IS
    'Team closures (json): each closure of the range credited to the team that closed it, and open tickets now. See docs/dashboard-api-contract.md.';

-- Entry points run as their owner with a search_path no caller can change (as in 24).
DO $$
DECLARE
    v_path text := format('pg_catalog, %I, pg_temp',
                          (SELECT n.nspname FROM pg_extension e
                             JOIN pg_namespace n ON n.oid = e.extnamespace
                            WHERE e.extname = 'postgis'));
BEGIN
    EXECUTE format('ALTER FUNCTION reporting.fn_inc_trends(date, date, text, text, timestamptz) '
                   'SET search_path = %s', v_path);
    EXECUTE format('ALTER FUNCTION reporting.fn_team_closures(date, date, text, timestamptz) '
                   'SET search_path = %s', v_path);
END
$$;

-- As in 24, except the routines granted: every SECURITY DEFINER function of
-- reporting (the entry points) rather than a list written here.
CREATE OR REPLACE FUNCTION tickets.setup_reader_role(p_role name DEFAULT 'fleettickets_reader')
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_result text := 'granted';
    v_entry_point regprocedure;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = p_role) THEN
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', p_role);
            v_result := 'created';
        EXCEPTION
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'role % is missing and % may not create roles', p_role, current_user
                    USING HINT = format('As a superuser: CREATE ROLE %I NOLOGIN; then as %I: SELECT tickets.setup_reader_role(%L);',
                                        p_role, current_user, p_role);
                RETURN 'missing';
            WHEN duplicate_object THEN
                NULL;  -- created meanwhile by a migration of another database on this cluster
        END;
    END IF;
    BEGIN
        EXECUTE format('ALTER ROLE %I SET statement_timeout = %L', p_role, '5s');
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE NOTICE '% may not set the statement_timeout of role %', current_user, p_role
            USING HINT = format('As a superuser: ALTER ROLE %I SET statement_timeout = ''5s'';', p_role);
    END;
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA tickets, reporting FROM %I', p_role);
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA tickets, reporting FROM %I', p_role);
    EXECUTE format('REVOKE ALL ON ALL ROUTINES IN SCHEMA tickets, reporting FROM %I', p_role);
    EXECUTE format('GRANT USAGE ON SCHEMA tickets, reporting TO %I', p_role);
    FOR v_entry_point IN
        SELECT p.oid::regprocedure FROM pg_proc p
         WHERE p.pronamespace = 'reporting'::regnamespace AND p.prosecdef
         ORDER BY p.oid
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', v_entry_point, p_role);
    END LOOP;
    EXECUTE format('GRANT SELECT ON tickets.inc_open_sla, tickets.inc_daily_snapshot TO %I', p_role);
    RETURN v_result;
END
$$;

REVOKE EXECUTE ON ALL ROUTINES IN SCHEMA tickets, reporting FROM PUBLIC;

SELECT tickets.setup_reader_role();
