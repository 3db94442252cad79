-- Closures by engineer inside the dashboard payload: for the window, per
-- owner and per assigned team, the closures, their median MTTR (minutes), SLA
-- compliance (the source's Compliant/Breached; `rate` leaves out closures
-- with neither) and the open tickets each currently holds (live, like the
-- open collection). Same filters as the rest of the payload; anyone with a
-- closure in the window or an open ticket appears, a blank owner or team as
-- null.
-- This restates fn_inc_dashboard from 09 (same signature and sections) with
-- an `engineers` section added, so the figures come from the same open and
-- closed sets in one pass over the table.

-- force_custom_plan: the filters are "NULL means all"; planning each call with
-- the actual values folds the unused filters away and keeps index scans.
-- work_mem: a month of closures sorts (percentiles, feature order) in memory.
CREATE OR REPLACE FUNCTION reporting.fn_inc_dashboard(
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
BEGIN
    w := reporting.inc_window(p_window, p_from, p_to, p_now);
    IF p_max_features < 1 THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('p_max_features must be at least 1 (got %s)', p_max_features),
            HINT = 'Pass NULL for no cap; the default is 10000 features per collection.';
    END IF;
    WITH open_t AS MATERIALIZED (
        SELECT o.* FROM tickets.inc_open_sla_at(p_now) o
         WHERE (v_cluster IS NULL OR lower(o.cluster) = v_cluster)
           AND (v_status IS NULL OR o.normalized_status = v_status)
    ), closed_t AS MATERIALIZED (
        SELECT i.cluster, i.owner, i.assigned_team, i.mttr, lower(i.sla_status) AS sla,
               i.closed_at - coalesce(i.created_at_service, i.first_seen_at) AS time_to_close,
               i.latitude IS NOT NULL AS mapped
          FROM tickets.inc i
         WHERE i.closed_at >= w.from_ts AND i.closed_at < w.to_ts
           AND i.is_actionable IS NOT TRUE
           AND (v_cluster IS NULL OR lower(i.cluster) = v_cluster)
           AND (v_status IS NULL OR i.normalized_status = v_status)
    ), created_t AS (
        SELECT lower(i.cluster) AS cluster_key, max(i.cluster COLLATE "C") AS cluster, count(*) AS n
          FROM tickets.inc i
         WHERE coalesce(i.created_at_service, i.first_seen_at) >= w.from_ts
           AND coalesce(i.created_at_service, i.first_seen_at) < w.to_ts
           AND (v_cluster IS NULL OR lower(i.cluster) = v_cluster)
           AND (v_status IS NULL OR i.normalized_status = v_status)
         GROUP BY 1
    ), open_stats AS (
        SELECT count(*) AS total,
               count(*) FILTER (WHERE sla_state = 'within') AS within,
               count(*) FILTER (WHERE sla_state = 'at_risk') AS at_risk,
               count(*) FILTER (WHERE sla_state = 'breached') AS breached,
               count(*) FILTER (WHERE sla_state = 'unknown') AS unknown,
               count(*) FILTER (WHERE sla_clock_source = 'created_at_service') AS by_created,
               count(*) FILTER (WHERE sla_clock_source = 'first_seen_at') AS by_first_seen,
               count(*) FILTER (WHERE sla_clock_source IS NULL) AS by_none,
               count(latitude) AS mapped
          FROM open_t
    ), closed_stats AS (
        SELECT count(*) AS total,
               count(*) FILTER (WHERE mapped) AS mapped,
               count(mttr) AS mttr_samples,
               round(percentile_cont(0.5) WITHIN GROUP (ORDER BY mttr)::numeric)::int AS mttr_median,
               round(percentile_cont(0.9) WITHIN GROUP (ORDER BY mttr)::numeric)::int AS mttr_p90,
               count(*) FILTER (WHERE sla = 'compliant') AS compliant,
               count(*) FILTER (WHERE sla = 'breached') AS breached,
               count(*) FILTER (WHERE time_to_close <= interval '48 hours') AS c48_within,
               count(*) FILTER (WHERE time_to_close > interval '48 hours') AS c48_breached
          FROM closed_t
    ), clusters AS (
        -- each set grouped on its own first: a dozen rows each, not the whole month
        SELECT u.cluster_key, max(u.cluster COLLATE "C") AS cluster,
               sum(u.open)::bigint AS open, sum(u.open_breached)::bigint AS open_breached,
               sum(u.closed)::bigint AS closed_in_window, sum(u.created)::bigint AS created_in_window
          FROM (SELECT lower(cluster) AS cluster_key, max(cluster COLLATE "C") AS cluster,
                       count(*) AS open, count(*) FILTER (WHERE sla_state = 'breached') AS open_breached,
                       0 AS closed, 0 AS created
                  FROM open_t GROUP BY 1
                UNION ALL
                SELECT lower(cluster), max(cluster COLLATE "C"), 0, 0, count(*), 0
                  FROM closed_t GROUP BY 1
                UNION ALL
                SELECT cluster_key, cluster, 0, 0, 0, n FROM created_t) u
         GROUP BY 1
    ), by_owner AS (
        SELECT u.name, sum(u.closures)::bigint AS closures, max(u.mttr_median) AS mttr_median,
               sum(u.compliant)::bigint AS compliant, sum(u.breached)::bigint AS breached,
               sum(u.open_held)::bigint AS open_held, sum(u.open_breached)::bigint AS open_breached
          FROM (SELECT owner AS name, count(*) AS closures,
                       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY mttr)::numeric)::int AS mttr_median,
                       count(*) FILTER (WHERE sla = 'compliant') AS compliant,
                       count(*) FILTER (WHERE sla = 'breached') AS breached,
                       0 AS open_held, 0 AS open_breached
                  FROM closed_t GROUP BY owner
                UNION ALL
                SELECT owner, 0, NULL, 0, 0, count(*), count(*) FILTER (WHERE sla_state = 'breached')
                  FROM open_t GROUP BY owner) u
         GROUP BY u.name
    ), by_team AS (
        SELECT u.name, sum(u.closures)::bigint AS closures, max(u.mttr_median) AS mttr_median,
               sum(u.compliant)::bigint AS compliant, sum(u.breached)::bigint AS breached,
               sum(u.open_held)::bigint AS open_held, sum(u.open_breached)::bigint AS open_breached
          FROM (SELECT assigned_team AS name, count(*) AS closures,
                       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY mttr)::numeric)::int AS mttr_median,
                       count(*) FILTER (WHERE sla = 'compliant') AS compliant,
                       count(*) FILTER (WHERE sla = 'breached') AS breached,
                       0 AS open_held, 0 AS open_breached
                  FROM closed_t GROUP BY assigned_team
                UNION ALL
                SELECT assigned_team, 0, NULL, 0, 0, count(*), count(*) FILTER (WHERE sla_state = 'breached')
                  FROM open_t GROUP BY assigned_team) u
         GROUP BY u.name
    ), meta AS (
        SELECT tickets.eat_ts(m.metadata ->> 'last_ingest_at') AS last_ingest_at,
               nullif(m.metadata ->> 'source_max_key', '') AS source_max_key,
               tickets.eat_ts(m.metadata ->> 'source_max_ts') AS source_max_ts,
               m.updated_at
          FROM tickets.import_meta m WHERE m.dataset = 'inc'
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
        'freshness', (
            SELECT json_build_object(
                'last_ingest_at', reporting.eat_iso(meta.last_ingest_at),
                'minutes_since_ingest',
                    floor(extract(epoch FROM p_now - meta.last_ingest_at) / 60)::int,
                'source_max_key', meta.source_max_key,
                'source_max_ts', reporting.eat_iso(meta.source_max_ts),
                'updated_at', reporting.eat_iso(meta.updated_at))
              FROM (SELECT 1) AS one LEFT JOIN meta ON true),
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
                'mttr_minutes', json_build_object(
                    'median', cs.mttr_median, 'p90', cs.mttr_p90, 'samples', cs.mttr_samples),
                'sla_compliance', json_build_object(
                    'compliant', cs.compliant, 'breached', cs.breached,
                    'unknown', cs.total - cs.compliant - cs.breached,
                    'rate', reporting.ratio(cs.compliant, cs.compliant + cs.breached)),
                'contract_48h', json_build_object(
                    'within', cs.c48_within, 'breached', cs.c48_breached,
                    'unknown', cs.total - cs.c48_within - cs.c48_breached,
                    'rate', reporting.ratio(cs.c48_within, cs.c48_within + cs.c48_breached)),
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
                      FROM (SELECT * FROM open_t WHERE latitude IS NOT NULL
                             ORDER BY hours_open DESC NULLS LAST, ticket_id
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
                      FROM (SELECT * FROM tickets.inc i
                             WHERE i.closed_at >= w.from_ts AND i.closed_at < w.to_ts
                               AND i.is_actionable IS NOT TRUE
                               AND (v_cluster IS NULL OR lower(i.cluster) = v_cluster)
                               AND (v_status IS NULL OR i.normalized_status = v_status)
                               AND i.latitude IS NOT NULL
                             ORDER BY i.closed_at DESC, i.ticket_id
                             LIMIT p_max_features) c), '[]'::json))
              FROM closed_stats cs)
    ) INTO payload
    FROM (SELECT 1) AS one;
    RETURN payload;
END
$$;
COMMENT ON FUNCTION reporting.fn_inc_dashboard(text, text, text, date, date, integer, timestamptz) IS
    'Dashboard payload (json): window, filters, freshness, metrics, engineers, open and closed GeoJSON. See docs/dashboard-api-contract.md.';
