-- Typed text columns hold at most 256 bytes of their value; raw keeps it whole.
-- A btree index row may not exceed 2,704 bytes, and tickets.inc's covering
-- indexes carry up to seven text columns of a ticket (cluster, owner,
-- location_name, ...). One 4,000-character cluster or 10,000-character
-- location_name on an open ticket used to fail the merge with "index row size
-- exceeds btree maximum", and with it its file and every file after it. With
-- every typed text column clipped to 256 bytes (a whole number of characters;
-- lower() may grow a value by half) and ticket_id limited to 100 characters
-- at ingestion, the widest index row stays under the limit whatever the feed
-- sends. No real value comes near: clusters, teams and place names are tens
-- of characters. The full text stays in raw.
--
-- clean_text keeps its identity (CREATE OR REPLACE), so the generated columns
-- use the new body for every row written from now on; the rows whose stored
-- values are longer are rewritten once here so that stored values and the
-- function agree.

CREATE FUNCTION tickets.clip_bytes(p text, p_max integer) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    n integer := p_max;  -- characters kept; each takes 1 to 4 bytes
BEGIN
    IF octet_length(p) <= p_max THEN
        RETURN p;
    END IF;
    WHILE octet_length(left(p, n)) > p_max LOOP
        n := n - greatest(1, (octet_length(left(p, n)) - p_max + 3) / 4);
    END LOOP;
    RETURN left(p, n);
END
$$;
COMMENT ON FUNCTION tickets.clip_bytes(text, integer) IS
    'The longest prefix of p that fits in p_max bytes, cut between characters.';

CREATE OR REPLACE FUNCTION tickets.clean_text(p text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN btrim(p) = '' THEN NULL
        WHEN upper(btrim(p)) IN ('N/A', '#N/A', 'NULL', '#VALUE!', '#REF!', '#NAME?',
                                 '#DIV/0!', '#NUM!', '#NULL!') THEN NULL
        WHEN octet_length(p) <= 256 THEN btrim(p)
        ELSE tickets.clip_bytes(btrim(p), 256)
    END
$$;

UPDATE tickets.inc SET raw = raw
 WHERE octet_length(normalized_status) > 256 OR octet_length(raw_status) > 256
    OR octet_length(bucket) > 256 OR octet_length(cluster) > 256
    OR octet_length(region) > 256 OR octet_length(location_name) > 256
    OR octet_length(assigned_team) > 256 OR octet_length(owner) > 256
    OR octet_length(sla_status) > 256;
