-- Core schema: the raw-jsonb-first ticket tables, the gazetteers that place
-- them on the map, the trigger that resolves each ticket's point, and the
-- GeoJSON read function of the live map.
-- Why raw jsonb: the feed adds columns without notice; keeping every source
-- column in `raw` means nothing is lost and later migrations can unpack more.

CREATE EXTENSION IF NOT EXISTS postgis;
CREATE SCHEMA IF NOT EXISTS tickets;
CREATE SCHEMA IF NOT EXISTS reporting;

-- Feed text -> typed values. IMMUTABLE and never raising: a malformed value
-- reads as NULL, because one bad cell must not abort a whole file's load.
CREATE FUNCTION tickets.to_bool(p text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE lower(btrim(p))
        WHEN 'true' THEN true WHEN 't' THEN true WHEN '1' THEN true
        WHEN 'yes' THEN true WHEN 'y' THEN true
        WHEN 'false' THEN false WHEN 'f' THEN false WHEN '0' THEN false
        WHEN 'no' THEN false WHEN 'n' THEN false
    END
$$;

CREATE FUNCTION tickets.to_double(p text) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p ~ '^\s*[+-]?(\d{1,12}(\.\d{0,15})?|\.\d{1,15})\s*$'
                THEN btrim(p)::double precision END
$$;

-- Gazetteer keys: case and spacing must not split one place into two.
CREATE FUNCTION tickets.place_key(p text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT nullif(lower(regexp_replace(btrim(p), '\s+', ' ', 'g')), '')
$$;

CREATE TABLE tickets.inc (
    ticket_id   text PRIMARY KEY,
    raw         jsonb NOT NULL,
    geom        geometry(Point, 4326),
    geo_source  text CHECK (geo_source IN ('feed', 'location', 'cluster')),
    ingested_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON COLUMN tickets.inc.raw IS 'The cleaned source row: the source of truth.';
COMMENT ON COLUMN tickets.inc.geo_source IS
    'Where geom came from: feed coordinates, the location gazetteer, the cluster gazetteer; NULL = not placed.';

CREATE TABLE tickets.crq (LIKE tickets.inc INCLUDING ALL);

CREATE TABLE tickets.geo_clusters (
    cluster_key text PRIMARY KEY,
    cluster     text NOT NULL,
    latitude    double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude   double precision CHECK (longitude BETWEEN -180 AND 180),
    geom        geometry(Point, 4326)
                GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(longitude, latitude), 4326)) STORED,
    provider    text,
    query       text,
    verified    boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tickets.geo_locations (
    location_key  text PRIMARY KEY,
    location_name text NOT NULL,
    cluster_key   text,
    latitude      double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude     double precision CHECK (longitude BETWEEN -180 AND 180),
    geom          geometry(Point, 4326)
                  GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(longitude, latitude), 4326)) STORED,
    provider      text,
    query         text,
    verified      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Precedence: feed coordinates, then the precise location, then the coarse
-- cluster centroid, then nothing. Kept as a function so a bulk re-resolution
-- after geocoding uses exactly the rule the trigger uses.
CREATE FUNCTION tickets.resolve_geometry(p_raw jsonb, OUT geom geometry, OUT geo_source text)
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
     WHERE l.location_key = tickets.place_key(p_raw ->> 'location_name') AND l.geom IS NOT NULL;
    IF geom IS NOT NULL THEN
        geo_source := 'location';
        RETURN;
    END IF;
    SELECT c.geom INTO geom FROM tickets.geo_clusters c
     WHERE c.cluster_key = tickets.place_key(p_raw ->> 'cluster') AND c.geom IS NOT NULL;
    IF geom IS NOT NULL THEN
        geo_source := 'cluster';
        RETURN;
    END IF;
    geom := NULL;
    geo_source := NULL;
END
$$;

CREATE FUNCTION tickets.trg_resolve_geometry() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    resolved record;
BEGIN
    resolved := tickets.resolve_geometry(NEW.raw);
    NEW.geom := resolved.geom;
    NEW.geo_source := resolved.geo_source;
    RETURN NEW;
END
$$;

-- On update only when a field that places the ticket changed: most deltas
-- change a status, and skipping the lookups keeps large loads fast. After the
-- gazetteers change, tickets.refresh_geometry() re-resolves the tickets affected.
CREATE TRIGGER inc_resolve_geometry_insert BEFORE INSERT ON tickets.inc
    FOR EACH ROW EXECUTE FUNCTION tickets.trg_resolve_geometry();
CREATE TRIGGER inc_resolve_geometry_update BEFORE UPDATE OF raw ON tickets.inc
    FOR EACH ROW WHEN (
        OLD.raw -> 'latitude' IS DISTINCT FROM NEW.raw -> 'latitude'
        OR OLD.raw -> 'longitude' IS DISTINCT FROM NEW.raw -> 'longitude'
        OR OLD.raw -> 'location_name' IS DISTINCT FROM NEW.raw -> 'location_name'
        OR OLD.raw -> 'cluster' IS DISTINCT FROM NEW.raw -> 'cluster')
    EXECUTE FUNCTION tickets.trg_resolve_geometry();
CREATE TRIGGER crq_resolve_geometry_insert BEFORE INSERT ON tickets.crq
    FOR EACH ROW EXECUTE FUNCTION tickets.trg_resolve_geometry();
CREATE TRIGGER crq_resolve_geometry_update BEFORE UPDATE OF raw ON tickets.crq
    FOR EACH ROW WHEN (
        OLD.raw -> 'latitude' IS DISTINCT FROM NEW.raw -> 'latitude'
        OR OLD.raw -> 'longitude' IS DISTINCT FROM NEW.raw -> 'longitude'
        OR OLD.raw -> 'location_name' IS DISTINCT FROM NEW.raw -> 'location_name'
        OR OLD.raw -> 'cluster' IS DISTINCT FROM NEW.raw -> 'cluster')
    EXECUTE FUNCTION tickets.trg_resolve_geometry();

-- Re-resolve the INC tickets whose point may have moved because a gazetteer
-- row changed (NULL keys: every ticket). Returns how many tickets moved.
CREATE FUNCTION tickets.refresh_geometry(p_location_keys text[] DEFAULT NULL,
                                         p_cluster_keys text[] DEFAULT NULL)
RETURNS integer LANGUAGE sql AS $$
    WITH moved AS (
        UPDATE tickets.inc t
           SET geom = r.geom, geo_source = r.geo_source
          FROM tickets.inc src
          CROSS JOIN LATERAL tickets.resolve_geometry(src.raw) r
         WHERE t.ticket_id = src.ticket_id
           AND ((p_location_keys IS NULL AND p_cluster_keys IS NULL)
                OR tickets.place_key(src.raw ->> 'location_name') = ANY (p_location_keys)
                OR tickets.place_key(src.raw ->> 'cluster') = ANY (p_cluster_keys))
           AND (t.geo_source IS DISTINCT FROM r.geo_source
                OR NOT (t.geom IS NOT DISTINCT FROM r.geom))
        RETURNING 1
    )
    SELECT count(*)::integer FROM moved
$$;

-- The live map: a GeoJSON FeatureCollection plus a summary that also counts the
-- tickets that could not be placed, so the map never hides them silently.
CREATE FUNCTION reporting.fn_tickets_for_map(p_open_only boolean DEFAULT true)
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
                    'none', count(*) FILTER (WHERE t.geo_source IS NULL)))
              FROM t)
    )
$$;
