-- tickets.resolve_geometry with one lookup per ticket instead of three.
-- It runs for every ticket inserted (a baseline inserts them all), and the
-- version from 13 called tickets.cluster_key_of, a SQL function PostgreSQL
-- cannot inline, which was re-planned on every call: ~140 us per ticket on a
-- 50,000-row load against ~20 us now. Same precedence and the same rules:
-- feed coordinates, then a usable (status 'ok') location row, then a usable
-- cluster row reached directly or through an alias, then nothing.

CREATE OR REPLACE FUNCTION tickets.resolve_geometry(p_raw jsonb, OUT geom geometry, OUT geo_source text)
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    lat double precision := tickets.to_double(p_raw ->> 'latitude');
    lon double precision := tickets.to_double(p_raw ->> 'longitude');
    v_location_key text := tickets.place_key(p_raw ->> 'location_name');
    v_cluster_key text := tickets.place_key(p_raw ->> 'cluster');
    location_geom geometry;
    cluster_geom geometry;
BEGIN
    -- (0, 0) is a spreadsheet's blank, not a place in the Gulf of Guinea.
    IF lat BETWEEN -90 AND 90 AND lon BETWEEN -180 AND 180 AND NOT (lat = 0 AND lon = 0) THEN
        geom := ST_SetSRID(ST_MakePoint(lon, lat), 4326);
        geo_source := 'feed';
        RETURN;
    END IF;
    IF v_location_key IS NULL AND v_cluster_key IS NULL THEN
        RETURN;
    END IF;
    SELECT l.geom, c.geom INTO location_geom, cluster_geom
      FROM (SELECT) AS one_row
      LEFT JOIN tickets.geo_locations l
             ON l.location_key = v_location_key
            AND l.status = 'ok' AND l.geom IS NOT NULL
      LEFT JOIN tickets.cluster_aliases a ON a.alias_key = v_cluster_key
      LEFT JOIN tickets.geo_clusters c
             ON c.cluster_key = coalesce(a.cluster_key, v_cluster_key)
            AND c.status = 'ok' AND c.geom IS NOT NULL;
    IF location_geom IS NOT NULL THEN
        geom := location_geom;
        geo_source := 'location';
    ELSIF cluster_geom IS NOT NULL THEN
        geom := cluster_geom;
        geo_source := 'cluster';
    END IF;
END
$$;
