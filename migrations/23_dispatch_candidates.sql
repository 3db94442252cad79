-- reporting.fn_dispatch_candidates: the open tickets a vehicle at (p_lng,
-- p_lat) could take next, for FleetNow dispatch, as one jsonb document in the
-- style of the other read functions (docs/dashboard-api-contract.md,
-- "Dispatch").
-- - p_order 'distance' (default): nearest first. The nearest tickets are
--   found by walking inc_geog_idx (KNN on geog), never by sorting every open
--   ticket. KNN orders by distance on a sphere while the reported metres are
--   geodesic (WGS 84 spheroid, up to ~0.7% apart), so the walk goes on past
--   the p_limit-th nearest on the sphere until 1% beyond it: every ticket
--   that can be among the p_limit nearest on the spheroid is then in hand,
--   and those few are ranked by their geodesic metres.
-- - p_order 'urgency': breached, then at_risk, then the rest, nearest first
--   within each, among the tickets within p_within_m (required: the radius
--   keeps the sort to a neighbourhood).
-- - unplaced_open counts the open tickets matching the filters that have no
--   point and so could not be offered; a small partial index keeps that count
--   cheap (in production almost every open ticket has a point).
-- - inc_open_geog_idx is inc_geog_idx for the open tickets only: the nearest
--   open tickets are found without stepping over closed ones (most of the
--   table), and the radius searches do not combine the whole-table GiST with
--   the open-ticket index. It costs the load path only for open tickets.
-- SLA state and hours open follow tickets.inc_open_sla_at (08) at p_now.
-- Bad arguments raise SQLSTATE 22023 with a message and a hint, like the
-- dashboard. Ties in distance go to the lower ticket_id.

CREATE INDEX inc_open_geog_idx ON tickets.inc USING gist (geog) WHERE is_actionable;
CREATE INDEX inc_open_unplaced_idx ON tickets.inc (lower(cluster), lower(assigned_team))
    WHERE is_actionable AND geog IS NULL;

CREATE FUNCTION reporting.fn_dispatch_candidates(
    p_lng      float8,
    p_lat      float8,
    p_limit    int DEFAULT 10,
    p_within_m int DEFAULT NULL,
    p_cluster  text DEFAULT NULL,
    p_team     text DEFAULT NULL,
    p_order    text DEFAULT 'distance',
    p_now      timestamptz DEFAULT now())
RETURNS jsonb
LANGUAGE plpgsql STABLE
-- Each call's filters are constants to the planner, so a missing filter
-- drops out of the plan instead of hiding the indexes behind an OR.
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    max_limit CONSTANT int := 100;
    v_order text := lower(btrim(p_order));
    v_cluster text := lower(nullif(btrim(p_cluster), ''));
    v_team text := lower(nullif(btrim(p_team), ''));
    v_origin geography;
    v_fetch int;  -- NULL: no limit
    v_done boolean;
    v_candidates jsonb;
    v_unplaced bigint;
BEGIN
    IF p_lat IS NULL OR NOT p_lat BETWEEN -90 AND 90 THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('p_lat must be between -90 and 90 (got %s)', coalesce(p_lat::text, 'NULL')),
            HINT = 'Latitude in decimal degrees (WGS 84); Nairobi is about -1.29. Check that latitude and longitude are not swapped.';
    END IF;
    IF p_lng IS NULL OR NOT p_lng BETWEEN -180 AND 180 THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('p_lng must be between -180 and 180 (got %s)', coalesce(p_lng::text, 'NULL')),
            HINT = 'Longitude in decimal degrees (WGS 84); Nairobi is about 36.82.';
    END IF;
    IF p_limit IS NULL OR p_limit < 1 OR p_limit > max_limit THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('p_limit must be between 1 and %s (got %s)', max_limit, coalesce(p_limit::text, 'NULL')),
            HINT = format('Ask for at most %s candidates; the default is 10.', max_limit);
    END IF;
    IF p_within_m < 1 THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('p_within_m must be at least 1 (got %s)', p_within_m),
            HINT = 'A radius in metres; pass NULL for no radius (distance order only).';
    END IF;
    IF v_order IS NULL OR v_order NOT IN ('distance', 'urgency') THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('unknown order %L', p_order),
            HINT = 'p_order is ''distance'' (nearest first) or ''urgency'' (breached, then at_risk, then the rest, nearest first within each; needs p_within_m).';
    END IF;
    IF v_order = 'urgency' AND p_within_m IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = 'order ''urgency'' needs p_within_m',
            HINT = 'Pass a radius in metres (for example 5000): urgency ranks every ticket inside it.';
    END IF;

    v_origin := ST_SetSRID(ST_MakePoint(p_lng, p_lat), 4326)::geography;

    IF v_order = 'distance' THEN
        -- How many of the nearest on the sphere (KNN on inc_open_geog_idx) to
        -- fetch so that every ticket within 1% beyond the p_limit-th is among
        -- them: those can still be among the p_limit nearest on the spheroid.
        -- Usually the first try; many tickets at one point (placed at a
        -- cluster's centroid) take a few. A radius search instead would read
        -- the whole bounding box of that circle, a cluster at a time.
        v_fetch := 2 * p_limit + 10;
        LOOP
            SELECT count(*) < v_fetch OR max(k.sphere) > (array_agg(k.sphere ORDER BY k.sphere))[p_limit] * 1.01 + 1
              INTO v_done
              FROM (SELECT o.geog <-> v_origin AS sphere
                      FROM tickets.inc_open_sla_at(p_now) o
                     WHERE o.geog IS NOT NULL
                       AND (v_cluster IS NULL OR lower(o.cluster) = v_cluster)
                       AND (v_team IS NULL OR lower(o.assigned_team) = v_team)
                       AND (p_within_m IS NULL OR ST_DWithin(o.geog, v_origin, p_within_m))
                     ORDER BY o.geog <-> v_origin
                     LIMIT v_fetch) k;
            EXIT WHEN v_done;
            v_fetch := v_fetch * 4;
        END LOOP;
    END IF;

    -- The same walk (for 'urgency' v_fetch is NULL: every ticket in the
    -- radius), ranked by urgency when asked, geodesic metres, ticket_id.
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'ticket_id', c.ticket_id,
               'cluster', c.cluster,
               'location_name', c.location_name,
               'assigned_team', c.assigned_team,
               'hours_open', c.hours_open,
               'sla_state', c.sla_state,
               'sla_clock_source', c.sla_clock_source,
               'metres', round(c.metres)::int,
               'geo_source', c.geo_source,
               'lng', round(ST_X(c.geog::geometry)::numeric, 6),
               'lat', round(ST_Y(c.geog::geometry)::numeric, 6))
               ORDER BY c.urgency, c.metres, c.ticket_id), '[]'::jsonb)
      INTO v_candidates
      FROM (SELECT n.*, ST_Distance(n.geog, v_origin) AS metres,
                   CASE WHEN v_order = 'distance' THEN 0
                        WHEN n.sla_state = 'breached' THEN 0
                        WHEN n.sla_state = 'at_risk' THEN 1
                        ELSE 2 END AS urgency
              FROM (SELECT o.ticket_id, o.cluster, o.location_name, o.assigned_team, o.hours_open,
                           o.sla_state, o.sla_clock_source, o.geo_source, o.geog
                      FROM tickets.inc_open_sla_at(p_now) o
                     WHERE o.geog IS NOT NULL
                       AND (v_cluster IS NULL OR lower(o.cluster) = v_cluster)
                       AND (v_team IS NULL OR lower(o.assigned_team) = v_team)
                       AND (p_within_m IS NULL OR ST_DWithin(o.geog, v_origin, p_within_m))
                     ORDER BY o.geog <-> v_origin
                     LIMIT v_fetch) n
             ORDER BY urgency, metres, ticket_id
             LIMIT p_limit) c;

    SELECT count(*) INTO v_unplaced
      FROM tickets.inc i
     WHERE i.is_actionable AND i.geog IS NULL
       AND (v_cluster IS NULL OR lower(i.cluster) = v_cluster)
       AND (v_team IS NULL OR lower(i.assigned_team) = v_team);

    RETURN jsonb_build_object(
        'generated_at', reporting.eat_iso(p_now),
        'origin', jsonb_build_object('lng', p_lng, 'lat', p_lat),
        'order', v_order,
        'filters', jsonb_build_object('limit', p_limit, 'within_m', p_within_m,
                                      'cluster', nullif(btrim(p_cluster), ''),
                                      'team', nullif(btrim(p_team), '')),
        'candidates', v_candidates,
        'unplaced_open', v_unplaced);
END
$$;
COMMENT ON FUNCTION reporting.fn_dispatch_candidates(float8, float8, int, int, text, text, text, timestamptz) IS
    'Dispatch payload (jsonb): open tickets with a point nearest (lng, lat), or by urgency within p_within_m, and how many open tickets have no point. See docs/dashboard-api-contract.md.';
