-- The geocoding cache: every provider answer is kept in the gazetteers with
-- its status, so a place already answered is never asked again and a failure
-- is never mistaken for "no result". Adds status, confidence, distance to the
-- cluster centroid, the provider's label and fetched_at (provider + fetched_at
-- let a per-provider caching policy expire rows, e.g. LocationIQ's 48 hours on
-- its free plan). Adds cluster aliases (QOA = Quarry Road) as a table that
-- operators extend. tickets.resolve_geometry now places a ticket only from a
-- usable row (status 'ok': a rejected, not-found or failed lookup never puts a
-- point on the map) and follows cluster aliases; refresh_geometry follows them too.

-- Rows written before this migration were hand-made coordinates: 'ok' when
-- they have both, otherwise they place nothing.
ALTER TABLE tickets.geo_clusters
    ADD COLUMN region       text,
    ADD COLUMN status       text NOT NULL DEFAULT 'ok',
    ADD COLUMN confidence   double precision,
    ADD COLUMN display_name text,
    ADD COLUMN last_error   text,
    ADD COLUMN fetched_at   timestamptz;
ALTER TABLE tickets.geo_locations
    ADD COLUMN region       text,
    ADD COLUMN status       text NOT NULL DEFAULT 'ok',
    ADD COLUMN confidence   double precision,
    ADD COLUMN distance_km  double precision,
    ADD COLUMN display_name text,
    ADD COLUMN last_error   text,
    ADD COLUMN fetched_at   timestamptz;
UPDATE tickets.geo_clusters SET status = 'not_found', latitude = NULL, longitude = NULL
 WHERE latitude IS NULL OR longitude IS NULL;
UPDATE tickets.geo_locations SET status = 'not_found', latitude = NULL, longitude = NULL
 WHERE latitude IS NULL OR longitude IS NULL;

-- 'ok' has a point; a verified row with a point is 'ok' (an operator vouched
-- for it), so "usable" means exactly status = 'ok'.
ALTER TABLE tickets.geo_clusters
    ADD CONSTRAINT geo_clusters_status_check
        CHECK (status IN ('ok', 'rejected', 'not_found', 'error')),
    ADD CONSTRAINT geo_clusters_point_pair_check CHECK ((latitude IS NULL) = (longitude IS NULL)),
    ADD CONSTRAINT geo_clusters_ok_has_point_check CHECK (status <> 'ok' OR latitude IS NOT NULL),
    ADD CONSTRAINT geo_clusters_verified_point_is_ok_check
        CHECK (NOT verified OR latitude IS NULL OR status = 'ok');
ALTER TABLE tickets.geo_locations
    ADD CONSTRAINT geo_locations_status_check
        CHECK (status IN ('ok', 'rejected', 'not_found', 'error')),
    ADD CONSTRAINT geo_locations_point_pair_check CHECK ((latitude IS NULL) = (longitude IS NULL)),
    ADD CONSTRAINT geo_locations_ok_has_point_check CHECK (status <> 'ok' OR latitude IS NOT NULL),
    ADD CONSTRAINT geo_locations_verified_point_is_ok_check
        CHECK (NOT verified OR latitude IS NULL OR status = 'ok');

COMMENT ON COLUMN tickets.geo_locations.status IS
    'ok: placed; rejected: too far from the cluster centroid or judged wrong by an operator; '
    'not_found: the provider has no such place; error: the lookup failed (retried next run).';
COMMENT ON COLUMN tickets.geo_locations.verified IS
    'Set by an operator: geocoding never overwrites this row.';
COMMENT ON COLUMN tickets.geo_locations.distance_km IS
    'Great-circle distance from the answer to its cluster centroid when it was saved.';
COMMENT ON COLUMN tickets.geo_locations.fetched_at IS
    'When the provider answered (NULL for operator rows): per-provider cache expiry reads it.';

-- A new coded variant of a place ("..._FDT4") reuses an earlier answer to the
-- same query instead of spending a request.
CREATE INDEX geo_locations_query_idx ON tickets.geo_locations (query);
CREATE INDEX geo_clusters_query_idx ON tickets.geo_clusters (query);

-- Cluster codes the feed uses instead of names. Keys are tickets.place_key()
-- forms, e.g. INSERT ... VALUES (tickets.place_key('QOA'), tickets.place_key('Quarry Road')).
CREATE TABLE tickets.cluster_aliases (
    alias_key   text PRIMARY KEY CHECK (alias_key = tickets.place_key(alias_key)),
    cluster_key text NOT NULL CHECK (cluster_key = tickets.place_key(cluster_key)),
    note        text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (alias_key <> cluster_key)
);

-- The cluster a feed value stands for: its alias target, else itself.
CREATE FUNCTION tickets.cluster_key_of(p_cluster text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(
        (SELECT a.cluster_key FROM tickets.cluster_aliases a
          WHERE a.alias_key = tickets.place_key(p_cluster)),
        tickets.place_key(p_cluster))
$$;

CREATE OR REPLACE FUNCTION tickets.resolve_geometry(p_raw jsonb, OUT geom geometry, OUT geo_source text)
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    lat double precision := tickets.to_double(p_raw ->> 'latitude');
    lon double precision := tickets.to_double(p_raw ->> 'longitude');
BEGIN
    -- (0, 0) is a spreadsheet's blank, not a place in the Gulf of Guinea.
    IF lat BETWEEN -90 AND 90 AND lon BETWEEN -180 AND 180 AND NOT (lat = 0 AND lon = 0) THEN
        geom := ST_SetSRID(ST_MakePoint(lon, lat), 4326);
        geo_source := 'feed';
        RETURN;
    END IF;
    SELECT l.geom INTO geom FROM tickets.geo_locations l
     WHERE l.location_key = tickets.place_key(p_raw ->> 'location_name')
       AND l.status = 'ok' AND l.geom IS NOT NULL;
    IF geom IS NOT NULL THEN
        geo_source := 'location';
        RETURN;
    END IF;
    SELECT c.geom INTO geom FROM tickets.geo_clusters c
     WHERE c.cluster_key = tickets.cluster_key_of(p_raw ->> 'cluster')
       AND c.status = 'ok' AND c.geom IS NOT NULL;
    IF geom IS NOT NULL THEN
        geo_source := 'cluster';
        RETURN;
    END IF;
    geom := NULL;
    geo_source := NULL;
END
$$;

-- As before, plus: a cluster key also reaches the tickets that carry one of
-- its aliases, so refreshing 'quarry road' moves the 'QOA' tickets.
CREATE OR REPLACE FUNCTION tickets.refresh_geometry(p_location_keys text[] DEFAULT NULL,
                                                    p_cluster_keys text[] DEFAULT NULL)
RETURNS integer LANGUAGE sql AS $$
    WITH keys AS (
        SELECT p_cluster_keys || ARRAY(
            SELECT a.alias_key FROM tickets.cluster_aliases a
             WHERE a.cluster_key = ANY (p_cluster_keys)) AS cluster_keys
    ), moved AS (
        UPDATE tickets.inc t
           SET geom = r.geom, geo_source = r.geo_source
          FROM keys, tickets.inc src
          CROSS JOIN LATERAL tickets.resolve_geometry(src.raw) r
         WHERE t.ticket_id = src.ticket_id
           AND ((p_location_keys IS NULL AND p_cluster_keys IS NULL)
                OR tickets.place_key(src.raw ->> 'location_name') = ANY (p_location_keys)
                OR tickets.place_key(src.raw ->> 'cluster') = ANY (keys.cluster_keys))
           AND (t.geo_source IS DISTINCT FROM r.geo_source
                OR NOT (t.geom IS NOT DISTINCT FROM r.geom))
        RETURNING 1
    )
    SELECT count(*)::integer FROM moved
$$;

-- A new, changed or removed alias re-places the tickets that carry it.
CREATE FUNCTION tickets.trg_cluster_alias_refresh() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM tickets.refresh_geometry(ARRAY[]::text[], ARRAY[OLD.alias_key]);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM tickets.refresh_geometry(ARRAY[]::text[], ARRAY[NEW.alias_key]);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER cluster_aliases_refresh AFTER INSERT OR UPDATE OR DELETE ON tickets.cluster_aliases
    FOR EACH ROW EXECUTE FUNCTION tickets.trg_cluster_alias_refresh();

-- Seeded after the trigger, so tickets already loaded with these codes move too.
INSERT INTO tickets.cluster_aliases (alias_key, cluster_key, note) VALUES
    ('qoa', 'quarry road', 'feed code'),
    ('ptmp', 'pipeline', 'feed code');
