-- A geography twin of geom on tickets.inc, so distances come out in metres
-- and radius search (ST_DWithin) and nearest-neighbour ordering (<->) can use
-- a GiST index without casting per row. Generated from geom, which the BEFORE
-- trigger sets before generated columns are computed.

ALTER TABLE tickets.inc
    ADD COLUMN geog geography(Point, 4326) GENERATED ALWAYS AS (geom::geography) STORED;
COMMENT ON COLUMN tickets.inc.geog IS 'geom as geography: metres for distance, radius and nearest-neighbour queries.';

CREATE INDEX inc_geog_idx ON tickets.inc USING gist (geog);
