-- reporting.fn_inc_dashboard: the one JSON payload the dashboard API serves
-- unchanged to the FleetOps map (docs/dashboard-api-contract.md is the
-- contract, schemas/dashboard-payload.schema.json its machine-checked form).
-- It holds the reporting window (EAT calendar days), the live open tickets
-- and the tickets closed in the window as GeoJSON, the SLA and MTTR metrics,
-- and how fresh the data is. Tickets without a point are left out of the
-- GeoJSON but counted in the metrics, and each collection says how many.
-- Bad arguments raise SQLSTATE 22023 (invalid_parameter_value) with a message
-- and a hint, never a silent fallback, so the API can answer 400.
-- Each collection carries at most p_max_features features (default 10,000;
-- NULL = no cap): the most urgent open tickets and the latest closures come
-- first, and the collection says how many it left out, so a month of history
-- at scale cannot turn into a payload no browser can draw.
-- p_now (default now()) is the instant the payload describes; tests pass it
-- to pin window boundaries exactly.

-- Every time in the payload is EAT wall-clock with an explicit offset,
-- whatever the session's TimeZone (Africa/Nairobi has no DST).
CREATE FUNCTION reporting.eat_iso(p timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT to_char(p AT TIME ZONE 'Africa/Nairobi', 'YYYY-MM-DD"T"HH24:MI:SS') || '+03:00'
$$;

-- The window as inclusive EAT dates and as a half-open [from_ts, to_ts) range.
CREATE FUNCTION reporting.inc_window(
    p_window text, p_from date, p_to date, p_now timestamptz,
    OUT window_name text, OUT from_date date, OUT to_date date,
    OUT from_ts timestamptz, OUT to_ts timestamptz)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    windows CONSTANT text := 'today, yesterday, last_7_days, last_30_days, this_month, custom';
    today date := (p_now AT TIME ZONE 'Africa/Nairobi')::date;
BEGIN
    IF p_now IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = 'p_now must not be null',
            HINT = 'Leave p_now out to use the current time.';
    END IF;
    window_name := lower(btrim(p_window));
    IF window_name IS NULL OR window_name = '' THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = 'p_window must not be empty',
            HINT = format('Use one of: %s.', windows);
    END IF;
    IF window_name <> 'custom' AND (p_from IS NOT NULL OR p_to IS NOT NULL) THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('p_from and p_to only apply to window ''custom'' (got window %L)', p_window),
            HINT = 'Pass p_window => ''custom'' with both dates, or leave the dates out.';
    END IF;
    CASE window_name
        WHEN 'today' THEN from_date := today; to_date := today;
        WHEN 'yesterday' THEN from_date := today - 1; to_date := today - 1;
        WHEN 'last_7_days' THEN from_date := today - 6; to_date := today;
        WHEN 'last_30_days' THEN from_date := today - 29; to_date := today;
        WHEN 'this_month' THEN from_date := date_trunc('month', today)::date; to_date := today;
        WHEN 'custom' THEN
            IF p_from IS NULL OR p_to IS NULL THEN
                RAISE EXCEPTION USING ERRCODE = '22023',
                    MESSAGE = 'window ''custom'' needs both p_from and p_to',
                    HINT = 'Dates are inclusive EAT calendar days, e.g. p_from => ''2026-06-01'', p_to => ''2026-06-15''.';
            END IF;
            IF p_from > p_to THEN
                RAISE EXCEPTION USING ERRCODE = '22023',
                    MESSAGE = format('p_from (%s) is after p_to (%s)', p_from, p_to),
                    HINT = 'Both dates are inclusive; for a single day pass the same date twice.';
            END IF;
            from_date := p_from; to_date := p_to;
        ELSE
            RAISE EXCEPTION USING ERRCODE = '22023',
                MESSAGE = format('unknown window %L', p_window),
                HINT = format('Use one of: %s (custom needs p_from and p_to).', windows);
    END CASE;
    from_ts := from_date::timestamp AT TIME ZONE 'Africa/Nairobi';
    to_ts := (to_date + 1)::timestamp AT TIME ZONE 'Africa/Nairobi';
END
$$;

-- A status filter that matches nothing because of a typo would look like
-- "no tickets"; refuse anything outside the feed's canonical statuses.
CREATE FUNCTION reporting.inc_status_filter(p_status text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    statuses CONSTANT text[] := ARRAY['open', 'assigned', 'in_progress', 'on_hold',
                                      'resolved', 'closed', 'cancelled'];
    status text := lower(nullif(btrim(p_status), ''));
BEGIN
    IF status IS NOT NULL AND NOT status = ANY (statuses) THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('unknown status %L', p_status),
            HINT = format('The status filter matches normalized_status: one of %s; leave it out for all.',
                          array_to_string(statuses, ', '));
    END IF;
    RETURN status;
END
$$;

-- Ratio of two counts, NULL when there is nothing to divide.
CREATE FUNCTION reporting.ratio(p_part bigint, p_whole bigint) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_whole > 0 THEN round(p_part::numeric / p_whole, 4) END
$$;

-- Indexes for the window sections. The covering ones let the closure and
-- creation figures of a long window come from the index alone instead of
-- reading every wide row: closed_at covers the closure metrics (it replaces
-- the plain closed_at index of 03), the SLA clock covers creations; the
-- cluster one serves a cluster-filtered dashboard.
DROP INDEX tickets.inc_closed_at_idx;
CREATE INDEX inc_closed_cover_idx ON tickets.inc (closed_at)
    INCLUDE (is_actionable, cluster, normalized_status, owner, assigned_team, mttr, sla_status,
             created_at_service, first_seen_at, latitude);
CREATE INDEX inc_clock_cover_idx ON tickets.inc ((coalesce(created_at_service, first_seen_at)))
    INCLUDE (created_at_service, first_seen_at, cluster, normalized_status);
CREATE INDEX inc_cluster_closed_at_idx ON tickets.inc (lower(cluster), closed_at);

-- force_custom_plan: the filters are "NULL means all"; planning each call with
-- the actual values folds the unused filters away and keeps index scans.
-- work_mem: a month of closures sorts (percentiles, feature order) in memory.
CREATE FUNCTION reporting.fn_inc_dashboard(
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
    'Dashboard payload (json): window, filters, freshness, metrics, open and closed GeoJSON. See docs/dashboard-api-contract.md.';
