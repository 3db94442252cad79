-- 39: the dashboard's GeoJSON features are written as text, not built value
-- by value with json_build_object.
--
-- Each feature cost ~20 us of server time on the million-ticket bench, and
-- 20,000 features (10,000 per collection, the default) were most of a call.
-- json_build_object works out each argument's type and output function on
-- every call: fourteen values and three nested objects per feature. Joining
-- the same text with || and string_agg, then parsing each collection once
-- as json at the end (one validating cast per collection instead of none per
-- feature), gives the same bytes at a fraction of the cost
-- (docs/phase-2-dashboard.md, "Per-feature cost").
--
-- A value is written as is between quotes only when JSON needs no escape in
-- it: a feature whose text columns hold a quote, a backslash or a control
-- character (or whose coordinates are not finite numbers) is built by the
-- old json_build_object expression instead, so the payload stays byte for
-- byte what it was (a test compares it with migration 31's body on a loaded
-- database). Real values never need that: ticket ids, places and names.
--
-- The closed features are read from inc_closed_cover_idx alone: it now also
-- carries the four columns a feature shows that the closure figures do not
-- need (longitude, region, location_name, geo_source). Without them each of
-- the 10,000 newest closures cost a heap fetch of its wide row, 15-30 us
-- apiece on the bench when the pages are not in shared buffers, more than
-- building its text. The index grows by about a tenth (162 MB -> 178 MB on
-- 1,000,000 tickets). Its widest row stays under the btree limit, as
-- migration 25 bounds it: seven text columns clipped to 256 bytes (two of
-- them lowered, so up to 384), ticket_id up to 100 characters and the short
-- geo_source come to under 2,600 bytes (a test loads the widest closure).
--
-- Same signature, settings (34's jit = off included) and grants.

DROP INDEX tickets.inc_closed_cover_idx;
CREATE INDEX inc_closed_cover_idx ON tickets.inc (closed_at)
    INCLUDE (is_actionable, cluster, normalized_status, owner, assigned_team, mttr, sla_status,
             created_at_service, first_seen_at, latitude, ticket_id,
             longitude, region, location_name, geo_source);

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
SET jit = off
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
                    -- written as text, each collection parsed as json once;
                    -- values JSON would escape take json_build_object (see above)
                    SELECT ('[' || string_agg(
                        CASE WHEN (coalesce(o.ticket_id, '') || coalesce(o.normalized_status, '') || coalesce(o.cluster, '') || coalesce(o.region, '') || coalesce(o.location_name, '') || coalesce(o.assigned_team, '') || coalesce(o.owner, '') || coalesce(o.geo_source, '')) ~ '[[:cntrl:]"[.backslash.]]'
                               OR NOT coalesce(abs(o.longitude) < 'Infinity' AND abs(o.latitude) < 'Infinity', false)
                        THEN json_build_object(
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
                                    'geo_source', o.geo_source))::text
                        ELSE '{"type" : "Feature", "id" : "' || o.ticket_id
                             || '", "geometry" : {"type" : "Point", "coordinates" : [' || o.longitude::text
                             || ', ' || o.latitude::text || ']}, "properties" : {"ticket_id" : "' || o.ticket_id
                             || '", "status" : ' || coalesce('"' || o.normalized_status || '"', 'null')
                             || ', "cluster" : ' || coalesce('"' || o.cluster || '"', 'null')
                             || ', "region" : ' || coalesce('"' || o.region || '"', 'null')
                             || ', "location_name" : ' || coalesce('"' || o.location_name || '"', 'null')
                             || ', "assigned_team" : ' || coalesce('"' || o.assigned_team || '"', 'null')
                             || ', "owner" : ' || coalesce('"' || o.owner || '"', 'null')
                             || ', "sla_state" : ' || coalesce('"' || o.sla_state || '"', 'null')
                             || ', "sla_clock_source" : ' || coalesce('"' || o.sla_clock_source || '"', 'null')
                             || ', "hours_open" : ' || coalesce(o.hours_open::text, 'null')
                             || ', "sla_due_at" : ' || coalesce('"' || reporting.eat_iso(o.sla_due_at) || '"', 'null')
                             || ', "geo_source" : ' || coalesce('"' || o.geo_source || '"', 'null')
                             || '}}'
                        END, ', '
                        ORDER BY o.hours_open DESC NULLS LAST, o.ticket_id) || ']')::json
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
                    SELECT ('[' || string_agg(
                        CASE WHEN (coalesce(c.ticket_id, '') || coalesce(c.normalized_status, '') || coalesce(c.cluster, '') || coalesce(c.region, '') || coalesce(c.location_name, '') || coalesce(c.assigned_team, '') || coalesce(c.owner, '') || coalesce(c.sla_status, '') || coalesce(c.geo_source, '')) ~ '[[:cntrl:]"[.backslash.]]'
                               OR NOT coalesce(abs(c.longitude) < 'Infinity' AND abs(c.latitude) < 'Infinity', false)
                        THEN json_build_object(
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
                                    'geo_source', c.geo_source))::text
                        ELSE '{"type" : "Feature", "id" : "' || c.ticket_id
                             || '", "geometry" : {"type" : "Point", "coordinates" : [' || c.longitude::text
                             || ', ' || c.latitude::text || ']}, "properties" : {"ticket_id" : "' || c.ticket_id
                             || '", "status" : ' || coalesce('"' || c.normalized_status || '"', 'null')
                             || ', "cluster" : ' || coalesce('"' || c.cluster || '"', 'null')
                             || ', "region" : ' || coalesce('"' || c.region || '"', 'null')
                             || ', "location_name" : ' || coalesce('"' || c.location_name || '"', 'null')
                             || ', "assigned_team" : ' || coalesce('"' || c.assigned_team || '"', 'null')
                             || ', "owner" : ' || coalesce('"' || c.owner || '"', 'null')
                             || ', "closed_at" : ' || coalesce('"' || reporting.eat_iso(c.closed_at) || '"', 'null')
                             || ', "mttr_minutes" : ' || coalesce(c.mttr::text, 'null')
                             || ', "sla_status" : ' || coalesce('"' || c.sla_status || '"', 'null')
                             || ', "geo_source" : ' || coalesce('"' || c.geo_source || '"', 'null')
                             || '}}'
                        END, ', '
                        ORDER BY c.closed_at DESC, c.ticket_id) || ']')::json
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
