-- Faster bodies for the parsers behind tickets.inc's generated columns; the
-- same results for every input. A stored generated column runs its parsers
-- on every row written, so they set the pace of large loads: on 200,000 rows
-- of the benchmark stream the generated columns cost ~93 us per row, against
-- ~7 us for the rest of a plain insert.
--
-- * eat_ts: the exporter's usual 'YYYY-MM-DD HH:MM:SS' is checked with LIKE
--   and one translate() and read from one bigint, instead of a regular
--   expression and six substring casts (~4.3 -> ~2.5 us per value); any other
--   shape goes to tickets.eat_ts_general, which is 03's body unchanged. Every
--   function called is IMMUTABLE, so the label stays true (no text->timestamp
--   cast, which reads DateStyle and TimeZone). STRICT: seven columns per row
--   and many blanks, which now cost no call at all.
-- * feed_point and hours_to_minutes were SQL functions with a FROM clause,
--   which PostgreSQL cannot inline and runs through the SQL-function executor
--   on every call (~14 us and ~7 us). As PL/pgSQL they take well under 1 us
--   and 2 us. feed_point runs twice per row (latitude and longitude).
--
-- CREATE OR REPLACE keeps each function's identity, so the generated columns
-- that reference them use the new bodies; stored values stay valid because
-- the results are the same (tests compare old and new bodies input by input).

CREATE FUNCTION tickets.eat_ts_general(p text) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    t text := btrim(p);
    m text[];
    off interval := interval '3 hours';
    y int; mo int; d int; h int; mi int; s numeric;
BEGIN
    IF t !~ '^\d{4}-\d\d-\d\d(?:[ T]\d\d:\d\d(?::\d\d(?:\.\d{1,9})?)?)?$' THEN
        IF t !~ '^\d{4}-\d\d-\d\d[ T]\d\d:\d\d(?::\d\d(?:\.\d{1,9})?)?(?:Z|[+-]\d\d(?::?\d\d)?)$' THEN
            RETURN NULL;
        END IF;
        m := regexp_match(t, '^(.*?)(?:Z|([+-])(\d\d):?(\d\d)?)$');
        t := m[1];
        off := CASE WHEN m[2] IS NULL THEN interval '0'
                    ELSE (CASE m[2] WHEN '-' THEN -1 ELSE 1 END)
                         * make_interval(hours => m[3]::int, mins => coalesce(m[4]::int, 0)) END;
    END IF;
    y := substr(t, 1, 4)::int;
    mo := substr(t, 6, 2)::int;
    d := substr(t, 9, 2)::int;
    h := coalesce(nullif(substr(t, 12, 2), '')::int, 0);
    mi := coalesce(nullif(substr(t, 15, 2), '')::int, 0);
    s := coalesce(nullif(substr(t, 18), '')::numeric, 0);
    IF y < 1 OR mo NOT BETWEEN 1 AND 12 OR d < 1 OR h > 23 OR mi > 59 OR s >= 60
       OR d > (CASE WHEN mo IN (1, 3, 5, 7, 8, 10, 12) THEN 31
                    WHEN mo <> 2 THEN 30
                    WHEN (y % 4 = 0 AND y % 100 <> 0) OR y % 400 = 0 THEN 29
                    ELSE 28 END) THEN
        RETURN NULL;
    END IF;
    RETURN (make_timestamp(y, mo, d, h, mi, s::double precision) - off) AT TIME ZONE 'UTC';
END
$$;
COMMENT ON FUNCTION tickets.eat_ts_general(text) IS
    'eat_ts for every accepted shape (T separator, fractions, offsets, bare dates); eat_ts calls it for all but the usual one.';

CREATE OR REPLACE FUNCTION tickets.eat_ts(p text) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    n bigint;
    y int; mo int; d int;
BEGIN
    -- The shape, then digits only in the digit places: the bigint cast below
    -- cannot fail.
    IF p LIKE '____-__-__ __:__:__' AND translate(p, '0123456789', '') = '-- ::' THEN
        n := translate(p, '-: ', '')::bigint;  -- YYYYMMDDhhmmss
        y := n / 10000000000;
        mo := n / 100000000 % 100;
        d := n / 1000000 % 100;
        -- Years before 1000 and every impossible field take the general path,
        -- which decides them exactly as before.
        IF y >= 1000 AND mo BETWEEN 1 AND 12 AND d >= 1
           AND d <= (CASE WHEN mo IN (1, 3, 5, 7, 8, 10, 12) THEN 31
                          WHEN mo <> 2 THEN 30
                          WHEN (y % 4 = 0 AND y % 100 <> 0) OR y % 400 = 0 THEN 29
                          ELSE 28 END)
           AND n / 10000 % 100 <= 23 AND n / 100 % 100 <= 59 AND n % 100 <= 59 THEN
            RETURN (make_timestamp(y, mo, d, (n / 10000 % 100)::int, (n / 100 % 100)::int, n % 100)
                    - interval '3 hours') AT TIME ZONE 'UTC';
        END IF;
    END IF;
    RETURN tickets.eat_ts_general(p);
END
$$;

CREATE OR REPLACE FUNCTION tickets.feed_point(p_raw jsonb) RETURNS geometry
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    lat double precision := tickets.to_double(p_raw ->> 'latitude');
    lon double precision;
BEGIN
    IF lat IS NULL THEN
        RETURN NULL;
    END IF;
    lon := tickets.to_double(p_raw ->> 'longitude');
    -- (0, 0) is a spreadsheet's blank, not a place in the Gulf of Guinea.
    IF lat BETWEEN -90 AND 90 AND lon BETWEEN -180 AND 180 AND NOT (lat = 0 AND lon = 0) THEN
        RETURN ST_SetSRID(ST_MakePoint(lon, lat), 4326);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION tickets.hours_to_minutes(p text) RETURNS integer
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    h numeric := tickets.to_numeric(p);
BEGIN
    IF h >= 0 AND h <= 87600 THEN
        RETURN round(h * 60)::integer;
    END IF;
    RETURN NULL;
END
$$;
