-- Import metadata: one row per dataset ('inc', 'crq') holding what the loader
-- knows about the feed (watermark, newest file, last run), so the map can say
-- how fresh it is. fn_tickets_for_map gains summary.freshness, same signature.

CREATE TABLE tickets.import_meta (
    dataset    text PRIMARY KEY,
    metadata   jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE OR REPLACE FUNCTION reporting.fn_tickets_for_map(p_open_only boolean DEFAULT true)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    WITH t AS (
        SELECT * FROM tickets.inc
         WHERE NOT p_open_only OR tickets.to_bool(raw ->> 'is_actionable')
    )
    SELECT jsonb_build_object(
        'type', 'FeatureCollection',
        'features', coalesce((
            SELECT jsonb_agg(jsonb_build_object(
                'type', 'Feature',
                'id', t.ticket_id,
                'geometry', ST_AsGeoJSON(t.geom, 6)::jsonb,
                'properties', jsonb_build_object(
                    'ticket_id', t.ticket_id,
                    'status', t.raw ->> 'normalized_status',
                    'cluster', t.raw ->> 'cluster',
                    'region', t.raw ->> 'region',
                    'location_name', t.raw ->> 'location_name',
                    'assigned_team', t.raw ->> 'assigned_team',
                    'owner', t.raw ->> 'owner',
                    'geo_source', t.geo_source)
                ) ORDER BY t.ticket_id)
              FROM t WHERE t.geom IS NOT NULL), '[]'::jsonb),
        'summary', (
            SELECT jsonb_build_object(
                'open_only', p_open_only,
                'tickets', count(*),
                'mapped', count(t.geom),
                'unmapped', count(*) - count(t.geom),
                'by_geo_source', jsonb_build_object(
                    'feed', count(*) FILTER (WHERE t.geo_source = 'feed'),
                    'location', count(*) FILTER (WHERE t.geo_source = 'location'),
                    'cluster', count(*) FILTER (WHERE t.geo_source = 'cluster'),
                    'none', count(*) FILTER (WHERE t.geo_source IS NULL)),
                'freshness', (
                    SELECT m.metadata || jsonb_build_object('updated_at', m.updated_at)
                      FROM tickets.import_meta m WHERE m.dataset = 'inc'))
              FROM t)
    )
$$;
