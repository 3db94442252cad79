-- Plain latitude/longitude columns on tickets.inc for the map and for exports
-- that do not speak PostGIS: the feed's own coordinates when it sends a usable
-- pair, otherwise the point the geometry trigger resolved (gazetteer or
-- geocoding). Generated from geom, which the BEFORE trigger sets first, so a
-- re-resolution (UPDATE ... SET raw = raw) refreshes them too.

-- The feed pair under the same rule resolve_geometry applies: both in range,
-- and (0, 0) is a spreadsheet blank, not a place.
CREATE FUNCTION tickets.feed_point(p_raw jsonb) RETURNS geometry
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN lat BETWEEN -90 AND 90 AND lon BETWEEN -180 AND 180
                     AND NOT (lat = 0 AND lon = 0)
                THEN ST_SetSRID(ST_MakePoint(lon, lat), 4326) END
      FROM (SELECT tickets.to_double(p_raw ->> 'latitude') AS lat,
                   tickets.to_double(p_raw ->> 'longitude') AS lon) AS feed
$$;

ALTER TABLE tickets.inc
    ADD COLUMN latitude  double precision
        GENERATED ALWAYS AS (ST_Y(coalesce(tickets.feed_point(raw), geom))) STORED,
    ADD COLUMN longitude double precision
        GENERATED ALWAYS AS (ST_X(coalesce(tickets.feed_point(raw), geom))) STORED;
COMMENT ON COLUMN tickets.inc.latitude IS
    'Feed latitude when the feed sends a usable pair, else ST_Y(geom); NULL = not placed.';
COMMENT ON COLUMN tickets.inc.longitude IS
    'Feed longitude when the feed sends a usable pair, else ST_X(geom); NULL = not placed.';
