-- A first load places its tickets in the INSERT that writes them, by one
-- rule that a statement can join, instead of through the geometry trigger
-- one row at a time.
--
-- tickets.resolve_geometry ran for every ticket a baseline inserts: a
-- PL/pgSQL call and, for a ticket without feed coordinates, a lookup
-- through SPI. On the 200,000-ticket bench (no coordinates in the feed)
-- the insert into tickets.inc took 13.9 s with the trigger and 9.3 s
-- without any geometry.
--
-- * tickets.geometry_of(raw) is the rule, as migration 14 states it: feed
--   coordinates (tickets.feed_point, the rule the latitude and longitude
--   columns already follow), then a usable (status 'ok') location row,
--   then a usable cluster row reached directly or through an alias, then
--   nothing. It is a single SQL query returning one row, so PostgreSQL
--   inlines it where a statement joins it laterally, and the gazetteer
--   lookups become hash joins (the same insert: 10.1 s). The keys are
--   worked out once per row (OFFSET 0 keeps that subquery from being
--   flattened into the joins, which would repeat them in every join).
-- * tickets.resolve_geometry, which the triggers call for single rows,
--   returns what geometry_of returns: one rule, two ways to run it.
-- * load.py's first load joins geometry_of and switches the insert trigger
--   off for its statement (switched on again in the same transaction).

CREATE FUNCTION tickets.geometry_of(p_raw jsonb)
RETURNS TABLE (geom geometry, geo_source text)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(k.feed_point, l.geom, c.geom),
           CASE WHEN k.feed_point IS NOT NULL THEN 'feed'
                WHEN l.geom IS NOT NULL THEN 'location'
                WHEN c.geom IS NOT NULL THEN 'cluster' END
      FROM (SELECT tickets.feed_point(p_raw) AS feed_point,
                   tickets.place_key(p_raw ->> 'location_name') AS location_key,
                   tickets.place_key(p_raw ->> 'cluster') AS cluster_key
            OFFSET 0) AS k
      LEFT JOIN tickets.geo_locations l
             ON k.feed_point IS NULL AND l.location_key = k.location_key
            AND l.status = 'ok' AND l.geom IS NOT NULL
      LEFT JOIN tickets.cluster_aliases a
             ON k.feed_point IS NULL AND a.alias_key = k.cluster_key
      LEFT JOIN tickets.geo_clusters c
             ON k.feed_point IS NULL AND c.cluster_key = coalesce(a.cluster_key, k.cluster_key)
            AND c.status = 'ok' AND c.geom IS NOT NULL
$$;
COMMENT ON FUNCTION tickets.geometry_of(jsonb) IS
    'Where a ticket''s raw row places it: feed coordinates, else the location gazetteer, else the cluster gazetteer (through an alias or directly), else nowhere. One row, always.';

-- Called by the triggers once per row: its query is planned once per
-- session, with geometry_of inlined into it.
CREATE OR REPLACE FUNCTION tickets.resolve_geometry(p_raw jsonb, OUT geom geometry, OUT geo_source text)
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    SELECT g.geom, g.geo_source INTO geom, geo_source FROM tickets.geometry_of(p_raw) AS g;
END
$$;

REVOKE EXECUTE ON FUNCTION tickets.geometry_of(jsonb) FROM PUBLIC;
