-- Team closures read a per-day rollup of the credited team, and a period's
-- exact mttr median and p90 no longer sort every mttr value of the period.
--
-- A year by week gathered and sorted ~900,000 mttr values (567 ms at 1M
-- tickets) and team closures over 90 days joined every closure of the range
-- to its newest closure event (2.1 s). Now:
--
-- * Each rollup row keeps its mttr values sorted, with a count per bucket
--   of a fixed scale (tickets.mttr_bucket_bounds: one minute wide below ten
--   minutes, then each bucket a fifth wider than the last).
--   Above 3,000 values, reporting.mttr_percentiles_of (behind
--   mttr_summary_of) finds, from the summed bucket counts of a period's
--   rows, the bucket that holds each rank percentile_cont reads (floor and
--   ceil of p * (n - 1)), then reads only that bucket's values from each row
--   (a slice of the sorted array, found by binary search) and interpolates
--   as percentile_cont does, so the float8 result, and the payload, are the
--   same bit for bit; up to 3,000 it sorts them, as percentile_cont does. tickets.inc_daily_mttr holds each
--   day's values of every cluster together, so a period over all clusters
--   reads one row a day, not one a day and cluster.
-- * tickets.inc_team_rollup: per EAT day of the closure, lower(cluster) and
--   credited team spelling (nullif(btrim(team), '')), the closures with their
--   mttr values, SLA and 48-hour counts, counted as a one-day custom window
--   with the dashboard's rule functions. The credited team is the one the
--   ticket's newest closure event names (else tickets.inc's assigned_team
--   when it has none), as fn_team_closures credited it. It is kept exact in
--   the writing transaction by the statement triggers on tickets.inc (a
--   change to what a closure is counted by, or to the team of a closed
--   ticket without a closure event) and by new statement triggers on
--   tickets.closure_events (any change to a ticket's events recomputes the
--   day it is closed on). tickets.refresh_team_rollup(NULL) recomputes every
--   day; the migration backfills it.
-- * fn_team_closures sums the rollup over the range; a team's name is still
--   the most frequent spelling among its closures (ties: the first in byte
--   order), from the spellings' counts.
-- * tickets.inc_open_rollup: open tickets per lower(cluster), team spelling
--   and EAT day of the SLA clock, shifted by the same triggers on tickets.inc
--   (each statement's new open rows added, its old ones taken away).
--   fn_team_closures' open_now is its sum; open_breached_now (the clock more
--   than 48 hours before p_now) its days before the cut-off's day plus that
--   day's open tickets up to the cut-off, read from the open tickets' clock
--   index. 100,000 open tickets were read and grouped on every call (~0.3 s).
--
-- The payloads of fn_inc_trends and fn_team_closures are unchanged.

CREATE FUNCTION tickets.mttr_bucket_bounds() RETURNS integer[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT '{0,1,2,3,4,5,6,7,8,9,11,14,17,21,26,32,39,47,57,69,83,100,120,144,173,208,250,300,360,432,519,623,748,898,1078,1294,1553,1864,2237,2685,3222,3867,4641,5570,6684,8021,9626,11552,13863,16636,19964,23957,28749,34499,41399,49679,59615,71538,85846,103016,123620,148344,178013,213616,256340,307608,369130,442956,531548,637858,765430,918516,1102220,1322664,1587197,1904637,2285565,2742678,3291214,3949457,4739349,5687219}'::integer[]
$$;
COMMENT ON FUNCTION tickets.mttr_bucket_bounds() IS
    'Lower bounds (minutes) of the mttr buckets the rollups count: bucket b = width_bucket(mttr, bounds) holds bounds[b] .. bounds[b + 1] - 1 (bucket 0: below bounds[1]).';

-- The bucket counts of a sorted mttr array: the non-empty buckets, ascending,
-- and how many values each holds.
CREATE FUNCTION tickets.mttr_histogram(p_sorted integer[], OUT buckets integer[], OUT counts integer[])
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array_agg(h.b ORDER BY h.b), array_agg(h.n ORDER BY h.b)
      FROM (SELECT width_bucket(v, tickets.mttr_bucket_bounds()) AS b, count(*)::integer AS n
              FROM unnest(p_sorted) AS v
             GROUP BY 1) AS h
$$;

-- One rollup row's mttr values: sorted, and their bucket counts.
CREATE TYPE tickets.mttr_part AS (sorted integer[], buckets integer[], counts integer[]);

-- percentile_cont(ARRAY[0.5, 0.9]) over the values of several rollup rows,
-- without gathering and sorting them all when they are many: the same float8
-- values (NULL when there is none). Up to a few thousand values
-- (p_sort_up_to) a sort is as cheap, and is percentile_cont itself. Its
-- statements keep one plan for the session (the callers force custom plans,
-- which here would plan them again on every call: ~2 ms each).
CREATE FUNCTION reporting.mttr_percentiles_of(p_parts tickets.mttr_part[], p_sort_up_to bigint DEFAULT 3000)
RETURNS float8[] LANGUAGE plpgsql STABLE PARALLEL SAFE
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_bounds CONSTANT integer[] := tickets.mttr_bucket_bounds();
    v_n bigint;
    v_buckets integer[];
    v_ends bigint[];     -- cumulative count at the end of each of v_buckets
    v_fraction float8;
    v_target float8;
    v_rank bigint;
    v_i integer;
    v_before bigint;
    v_held integer := -1;  -- the bucket whose values v_values holds, ascending
    v_values integer[];
    v_at float8[];
    v_result float8[] := '{}';
BEGIN
    SELECT sum(cardinality(p.sorted)) INTO v_n FROM unnest(p_parts) AS p;
    IF v_n IS NULL OR v_n = 0 THEN
        RETURN NULL;
    ELSIF v_n <= p_sort_up_to THEN
        RETURN (SELECT percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY x.v)
                  FROM (SELECT unnest(p.sorted) AS v FROM unnest(p_parts) AS p) AS x);
    END IF;
    SELECT array_agg(h.b ORDER BY h.b), array_agg(h.ends ORDER BY h.b) INTO v_buckets, v_ends
      FROM (SELECT u.b, sum(sum(u.c)) OVER (ORDER BY u.b)::bigint AS ends
              FROM (SELECT unnest(p.buckets) AS b, unnest(p.counts) AS c FROM unnest(p_parts) AS p) AS u
             GROUP BY u.b) AS h;
    FOREACH v_fraction IN ARRAY ARRAY[0.5, 0.9]::float8[] LOOP
        -- percentile_cont's target row (0-based), the values at its floor and
        -- ceiling, and its interpolation in the same order of operations
        v_target := v_fraction * (v_n - 1);
        v_at := '{}';
        FOREACH v_rank IN ARRAY ARRAY[floor(v_target)::bigint, ceil(v_target)::bigint] LOOP
            v_i := width_bucket(v_rank, v_ends) + 1;  -- the first bucket ending past the rank
            v_before := CASE WHEN v_i = 1 THEN 0 ELSE v_ends[v_i - 1] END;
            IF v_buckets[v_i] <> v_held THEN
                -- each row's values in the bucket: a slice of its sorted array,
                -- from the count of values below the bucket to the count up to its end
                v_held := v_buckets[v_i];
                SELECT array_agg(x.v ORDER BY x.v) INTO v_values
                  FROM (SELECT unnest(p.sorted[CASE WHEN v_held = 0 THEN 0
                                                    ELSE width_bucket(v_bounds[v_held] - 1, p.sorted) END + 1
                                             : CASE WHEN v_held >= cardinality(v_bounds) THEN cardinality(p.sorted)
                                                    ELSE width_bucket(v_bounds[v_held + 1] - 1, p.sorted) END]) AS v
                          FROM unnest(p_parts) AS p
                         WHERE p.sorted IS NOT NULL) AS x;
            END IF;
            v_at := v_at || v_values[v_rank - v_before + 1]::float8;
        END LOOP;
        v_result := v_result || (v_at[1] + (v_target - floor(v_target)) * (v_at[2] - v_at[1]));
    END LOOP;
    RETURN v_result;
END
$$;
COMMENT ON FUNCTION reporting.mttr_percentiles_of(tickets.mttr_part[], bigint) IS
    'percentile_cont(ARRAY[0.5, 0.9]) of the union of rollup rows'' mttr values, reading only the buckets that hold the ranks it interpolates between.';

-- reporting.mttr_summary over the values of several rollup rows: the same JSON.
CREATE FUNCTION reporting.mttr_summary_of(p_parts tickets.mttr_part[])
RETURNS json LANGUAGE plpgsql STABLE PARALLEL SAFE
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_pct float8[] := reporting.mttr_percentiles_of(p_parts);
BEGIN
    RETURN json_build_object(
               'median', round(v_pct[1]::numeric)::int,
               'p90', round(v_pct[2]::numeric)::int,
               'samples', (SELECT coalesce(sum(cardinality(p.sorted)), 0) FROM unnest(p_parts) AS p));
END
$$;
COMMENT ON FUNCTION reporting.mttr_summary_of(tickets.mttr_part[]) IS
    'reporting.mttr_summary of the union of rollup rows'' mttr values (median, p90, samples).';

-- The trends rollup keeps its mttr values sorted, with their bucket counts.
ALTER TABLE tickets.inc_daily_rollup
    ADD COLUMN mttr_buckets integer[],
    ADD COLUMN mttr_counts integer[];
COMMENT ON COLUMN tickets.inc_daily_rollup.mttrs IS 'The mttr (minutes) of each closure of the day that has one, ascending; NULL when none.';
COMMENT ON COLUMN tickets.inc_daily_rollup.mttr_buckets IS 'The non-empty buckets (tickets.mttr_bucket_bounds) of mttrs, ascending.';
COMMENT ON COLUMN tickets.inc_daily_rollup.mttr_counts IS 'How many of mttrs each of mttr_buckets holds.';

-- A day's mttr values of every cluster together, sorted, with their bucket
-- counts: a period over all clusters reads one of these per day instead of
-- one rollup row per day and cluster (7 instead of ~84 a week).
CREATE TABLE tickets.inc_daily_mttr (
    day          date PRIMARY KEY,
    mttrs        integer[] NOT NULL,
    mttr_buckets integer[] NOT NULL,
    mttr_counts  integer[] NOT NULL
);
COMMENT ON TABLE tickets.inc_daily_mttr IS
    'Per EAT day: the mttr values of all the day''s rows of tickets.inc_daily_rollup together, ascending, with their bucket counts; no row for a day without one. Written by refresh_daily_rollup; read by fn_inc_trends over all clusters.';

CREATE OR REPLACE FUNCTION tickets.refresh_daily_rollup(p_days date[])
RETURNS integer LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    v_days date[] := p_days;
    v_span record;
    v_rows integer;
BEGIN
    IF v_days IS NULL THEN
        DELETE FROM tickets.inc_daily_rollup;
        DELETE FROM tickets.inc_daily_mttr;
        SELECT array_agg(DISTINCT d ORDER BY d) INTO v_days
          FROM tickets.inc i,
               LATERAL (VALUES (tickets.eat_day(i.closed_at)),
                               (tickets.eat_day(coalesce(i.created_at_service, i.first_seen_at)))) AS x(d)
         WHERE d IS NOT NULL;
    ELSE
        SELECT array_agg(DISTINCT d ORDER BY d) INTO v_days FROM unnest(v_days) AS d WHERE d IS NOT NULL;
        DELETE FROM tickets.inc_daily_rollup WHERE day = ANY (v_days);
    END IF;
    IF v_days IS NULL THEN
        RETURN 0;
    END IF;
    IF cardinality(v_days) * 2 >= v_days[cardinality(v_days)] - v_days[1] + 1 THEN
        v_span := reporting.inc_window('custom', v_days[1], v_days[cardinality(v_days)], now());
        INSERT INTO tickets.inc_daily_rollup (day, cluster_key, created, closed, mttrs, mttr_buckets, mttr_counts,
                                              compliant, breached, c48_within, c48_breached)
        SELECT y.day, y.cluster_key, y.created, y.closed, y.mttrs, h.buckets, h.counts,
               y.compliant, y.breached, y.c48_within, y.c48_breached
          FROM (
               SELECT x.day, x.cluster_key, sum(x.created) AS created, sum(x.closed) AS closed,
                      min(x.mttrs) AS mttrs, sum(x.compliant) AS compliant, sum(x.breached) AS breached,
                      sum(x.c48_within) AS c48_within, sum(x.c48_breached) AS c48_breached
                 FROM (
                      SELECT tickets.eat_day(i.closed_at) AS day, lower(i.cluster) AS cluster_key, 0 AS created,
                             count(*) AS closed,
                             array_agg(i.mttr ORDER BY i.mttr) FILTER (WHERE i.mttr IS NOT NULL) AS mttrs,
                             count(*) FILTER (WHERE reporting.closure_sla(i.sla_status) = 'compliant') AS compliant,
                             count(*) FILTER (WHERE reporting.closure_sla(i.sla_status) = 'breached') AS breached,
                             count(*) FILTER (WHERE reporting.closure_contract_48h(i.closed_at, i.created_at_service,
                                                                                   i.first_seen_at) = 'within')
                                 AS c48_within,
                             count(*) FILTER (WHERE reporting.closure_contract_48h(i.closed_at, i.created_at_service,
                                                                                   i.first_seen_at) = 'breached')
                                 AS c48_breached
                        FROM reporting.inc_closed_between(v_span.from_ts, v_span.to_ts, NULL, NULL) i
                       GROUP BY 1, 2
                      UNION ALL
                      SELECT tickets.eat_day(coalesce(i.created_at_service, i.first_seen_at)), lower(i.cluster),
                             count(*), 0, NULL, 0, 0, 0, 0
                        FROM reporting.inc_created_between(v_span.from_ts, v_span.to_ts, NULL, NULL) i
                       GROUP BY 1, 2) AS x
                WHERE x.day = ANY (v_days)
                GROUP BY x.day, x.cluster_key) AS y
         CROSS JOIN LATERAL tickets.mttr_histogram(y.mttrs) AS h;
    ELSE
        INSERT INTO tickets.inc_daily_rollup (day, cluster_key, created, closed, mttrs, mttr_buckets, mttr_counts,
                                              compliant, breached, c48_within, c48_breached)
        SELECT y.day, y.cluster_key, y.created, y.closed, y.mttrs, h.buckets, h.counts,
               y.compliant, y.breached, y.c48_within, y.c48_breached
          FROM (
               SELECT w.from_date AS day, x.cluster_key, sum(x.created) AS created, sum(x.closed) AS closed,
                      min(x.mttrs) AS mttrs, sum(x.compliant) AS compliant, sum(x.breached) AS breached,
                      sum(x.c48_within) AS c48_within, sum(x.c48_breached) AS c48_breached
                 FROM unnest(v_days) AS days(d)
                CROSS JOIN LATERAL reporting.inc_window('custom', days.d, days.d, now()) AS w
                CROSS JOIN LATERAL (
                      SELECT lower(i.cluster) AS cluster_key, 0 AS created, count(*) AS closed,
                             array_agg(i.mttr ORDER BY i.mttr) FILTER (WHERE i.mttr IS NOT NULL) AS mttrs,
                             count(*) FILTER (WHERE reporting.closure_sla(i.sla_status) = 'compliant') AS compliant,
                             count(*) FILTER (WHERE reporting.closure_sla(i.sla_status) = 'breached') AS breached,
                             count(*) FILTER (WHERE reporting.closure_contract_48h(i.closed_at, i.created_at_service,
                                                                                   i.first_seen_at) = 'within')
                                 AS c48_within,
                             count(*) FILTER (WHERE reporting.closure_contract_48h(i.closed_at, i.created_at_service,
                                                                                   i.first_seen_at) = 'breached')
                                 AS c48_breached
                        FROM reporting.inc_closed_between(w.from_ts, w.to_ts, NULL, NULL) i
                       GROUP BY 1
                      UNION ALL
                      SELECT lower(i.cluster), count(*), 0, NULL, 0, 0, 0, 0
                        FROM reporting.inc_created_between(w.from_ts, w.to_ts, NULL, NULL) i
                       GROUP BY 1) AS x
                GROUP BY w.from_date, x.cluster_key) AS y
         CROSS JOIN LATERAL tickets.mttr_histogram(y.mttrs) AS h;
    END IF;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    DELETE FROM tickets.inc_daily_mttr WHERE day = ANY (v_days);
    INSERT INTO tickets.inc_daily_mttr (day, mttrs, mttr_buckets, mttr_counts)
    SELECT m.day, m.mttrs, h.buckets, h.counts
      FROM (SELECT r.day, array_agg(v ORDER BY v) AS mttrs
              FROM tickets.inc_daily_rollup r, unnest(r.mttrs) AS v
             WHERE r.day = ANY (v_days)
             GROUP BY r.day) AS m
     CROSS JOIN LATERAL tickets.mttr_histogram(m.mttrs) AS h;
    RETURN v_rows;
END
$$;

CREATE TABLE tickets.inc_team_rollup (
    day          date NOT NULL,
    cluster_key  text,
    team         text,
    closed       bigint NOT NULL,
    mttrs        integer[],
    mttr_buckets integer[],
    mttr_counts  integer[],
    compliant    bigint NOT NULL,
    breached     bigint NOT NULL,
    c48_within   bigint NOT NULL,
    c48_breached bigint NOT NULL
);
CREATE UNIQUE INDEX inc_team_rollup_day_cluster_team_idx
    ON tickets.inc_team_rollup (day, cluster_key, team) NULLS NOT DISTINCT;
COMMENT ON TABLE tickets.inc_team_rollup IS
    'Per EAT day of the closure, lower(cluster) and credited team spelling: closures with their mttr values, SLA and 48-hour counts, as the dashboard counts a one-day custom window. Kept by triggers on tickets.inc and tickets.closure_events; read by fn_team_closures.';
COMMENT ON COLUMN tickets.inc_team_rollup.cluster_key IS 'lower(cluster); NULL for tickets without a cluster.';
COMMENT ON COLUMN tickets.inc_team_rollup.team IS
    'nullif(btrim(team), ''''): the team the ticket''s newest closure event names, else tickets.inc.assigned_team when it has none.';
COMMENT ON COLUMN tickets.inc_team_rollup.mttrs IS 'The mttr (minutes) of each closure that has one, ascending; NULL when none.';

-- Recomputes the team rollup rows of the given closure days (every day when
-- p_days is NULL); returns how many rows it wrote. Many days (a first load,
-- a history rebuild, which write every event in one statement) are read in
-- one pass over their span, each closure joined to its ticket's newest event
-- by one hash join over the events; a few days (a delta) are read one day's
-- window each, each closure's newest event looked up by key.
CREATE FUNCTION tickets.refresh_team_rollup(p_days date[])
RETURNS integer LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    v_days date[];
    v_span record;
    v_rows integer;
BEGIN
    IF p_days IS NULL THEN
        DELETE FROM tickets.inc_team_rollup;
        SELECT array_agg(DISTINCT d ORDER BY d) INTO v_days
          FROM (SELECT tickets.eat_day(i.closed_at) AS d FROM tickets.inc i WHERE i.closed_at IS NOT NULL) AS x;
    ELSE
        SELECT array_agg(DISTINCT d ORDER BY d) INTO v_days FROM unnest(p_days) AS d WHERE d IS NOT NULL;
        DELETE FROM tickets.inc_team_rollup WHERE day = ANY (v_days);
    END IF;
    IF v_days IS NULL THEN
        RETURN 0;
    END IF;
    -- Lookups by key need the events' key index, which a first capture
    -- drops while it writes every event.
    IF cardinality(v_days) > 31
       OR NOT EXISTS (SELECT FROM pg_index x
                       WHERE x.indrelid = 'tickets.closure_events'::regclass AND x.indisvalid
                         AND x.indkey[0] = (SELECT a.attnum FROM pg_attribute a
                                             WHERE a.attrelid = x.indrelid AND a.attname = 'ticket_id')) THEN
        v_span := reporting.inc_window('custom', v_days[1], v_days[cardinality(v_days)], now());
        INSERT INTO tickets.inc_team_rollup (day, cluster_key, team, closed, mttrs, mttr_buckets, mttr_counts,
                                             compliant, breached, c48_within, c48_breached)
        SELECT y.day, y.cluster_key, y.team, y.closed, y.mttrs, h.buckets, h.counts,
               y.compliant, y.breached, y.c48_within, y.c48_breached
          FROM (
               SELECT tickets.eat_day(i.closed_at) AS day, lower(i.cluster) AS cluster_key,
                      nullif(btrim(CASE WHEN e.ticket_id IS NOT NULL THEN e.assigned_team
                                        ELSE i.assigned_team END), '') AS team,
                      count(*) AS closed,
                      array_agg(i.mttr ORDER BY i.mttr) FILTER (WHERE i.mttr IS NOT NULL) AS mttrs,
                      count(*) FILTER (WHERE reporting.closure_sla(i.sla_status) = 'compliant') AS compliant,
                      count(*) FILTER (WHERE reporting.closure_sla(i.sla_status) = 'breached') AS breached,
                      count(*) FILTER (WHERE reporting.closure_contract_48h(i.closed_at, i.created_at_service,
                                                                            i.first_seen_at) = 'within') AS c48_within,
                      count(*) FILTER (WHERE reporting.closure_contract_48h(i.closed_at, i.created_at_service,
                                                                            i.first_seen_at) = 'breached')
                          AS c48_breached
                 FROM reporting.inc_closed_between(v_span.from_ts, v_span.to_ts, NULL, NULL) i
                 LEFT JOIN (SELECT DISTINCT ON (e.ticket_id) e.ticket_id, e.assigned_team
                              FROM tickets.closure_events e
                             ORDER BY e.ticket_id, e.observed_at DESC) AS e ON e.ticket_id = i.ticket_id
                WHERE tickets.eat_day(i.closed_at) = ANY (v_days)
                GROUP BY 1, 2, 3) AS y
         CROSS JOIN LATERAL tickets.mttr_histogram(y.mttrs) AS h;
    ELSE
        INSERT INTO tickets.inc_team_rollup (day, cluster_key, team, closed, mttrs, mttr_buckets, mttr_counts,
                                             compliant, breached, c48_within, c48_breached)
        SELECT w.from_date, y.cluster_key, y.team, y.closed, y.mttrs, h.buckets, h.counts,
               y.compliant, y.breached, y.c48_within, y.c48_breached
          FROM unnest(v_days) AS days(d)
         CROSS JOIN LATERAL reporting.inc_window('custom', days.d, days.d, now()) AS w
         CROSS JOIN LATERAL (
               SELECT lower(i.cluster) AS cluster_key,
                      nullif(btrim(CASE WHEN e.found THEN e.assigned_team ELSE i.assigned_team END), '') AS team,
                      count(*) AS closed,
                      array_agg(i.mttr ORDER BY i.mttr) FILTER (WHERE i.mttr IS NOT NULL) AS mttrs,
                      count(*) FILTER (WHERE reporting.closure_sla(i.sla_status) = 'compliant') AS compliant,
                      count(*) FILTER (WHERE reporting.closure_sla(i.sla_status) = 'breached') AS breached,
                      count(*) FILTER (WHERE reporting.closure_contract_48h(i.closed_at, i.created_at_service,
                                                                            i.first_seen_at) = 'within') AS c48_within,
                      count(*) FILTER (WHERE reporting.closure_contract_48h(i.closed_at, i.created_at_service,
                                                                            i.first_seen_at) = 'breached')
                          AS c48_breached
                 FROM reporting.inc_closed_between(w.from_ts, w.to_ts, NULL, NULL) i
                 LEFT JOIN LATERAL (
                       SELECT true AS found, e.assigned_team FROM tickets.closure_events e
                        WHERE e.ticket_id = i.ticket_id
                        ORDER BY e.observed_at DESC LIMIT 1) AS e ON true
                GROUP BY 1, 2) AS y
         CROSS JOIN LATERAL tickets.mttr_histogram(y.mttrs) AS h;
    END IF;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_rows;
END
$$;

-- A change to a ticket's closure events moves its credit: the day it is
-- counted as closed on now (if it is) is recomputed. The query is planned on
-- each call (EXECUTE): the changed events are three or a million, and a plan
-- cached for one would be wrong for the other.
CREATE FUNCTION tickets.trg_closure_events_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_changed text := CASE TG_OP WHEN 'INSERT' THEN 'SELECT n.ticket_id FROM new_rows n'
                                 WHEN 'DELETE' THEN 'SELECT o.ticket_id FROM old_rows o'
                                 WHEN 'UPDATE' THEN 'SELECT o.ticket_id FROM old_rows o '
                                                    'UNION ALL SELECT n.ticket_id FROM new_rows n' END;
    v_days date[];
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM tickets.refresh_team_rollup(NULL);
        RETURN NULL;
    END IF;
    EXECUTE 'SELECT array_agg(DISTINCT tickets.eat_day(i.closed_at)) FROM tickets.inc i '
            'WHERE i.ticket_id IN (' || v_changed || ') '
            'AND i.closed_at IS NOT NULL AND i.is_actionable IS NOT TRUE'
       INTO v_days;
    IF v_days IS NOT NULL THEN
        PERFORM tickets.refresh_team_rollup(v_days);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER closure_events_rollup_insert AFTER INSERT ON tickets.closure_events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tickets.trg_closure_events_rollup();
CREATE TRIGGER closure_events_rollup_update AFTER UPDATE ON tickets.closure_events
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tickets.trg_closure_events_rollup();
CREATE TRIGGER closure_events_rollup_delete AFTER DELETE ON tickets.closure_events
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tickets.trg_closure_events_rollup();
CREATE TRIGGER closure_events_rollup_truncate AFTER TRUNCATE ON tickets.closure_events
    FOR EACH STATEMENT EXECUTE FUNCTION tickets.trg_closure_events_rollup();

-- Open tickets per lower(cluster), team spelling and EAT day of their SLA
-- clock, so the team closures' open_now and open_breached_now add up a few
-- thousand rows instead of reading every open ticket. Kept exact by the
-- triggers on tickets.inc: each statement adds its new open rows and takes
-- away its old ones (transition tables); a truncate empties it.
CREATE TABLE tickets.inc_open_rollup (
    cluster_key text,
    team        text,
    clock_day   date,
    open        bigint NOT NULL
);
CREATE UNIQUE INDEX inc_open_rollup_key_idx
    ON tickets.inc_open_rollup (cluster_key, team, clock_day) NULLS NOT DISTINCT;
COMMENT ON TABLE tickets.inc_open_rollup IS
    'Open tickets (is_actionable) per lower(cluster), nullif(btrim(assigned_team), '''') and EAT day of the SLA clock (NULL without one). Kept by triggers on tickets.inc; read by fn_team_closures.';

INSERT INTO tickets.inc_open_rollup (cluster_key, team, clock_day, open)
SELECT lower(i.cluster), nullif(btrim(i.assigned_team), ''),
       tickets.eat_day(coalesce(i.created_at_service, i.first_seen_at)), count(*)
  FROM tickets.inc i
 WHERE i.is_actionable
 GROUP BY 1, 2, 3;
ANALYZE tickets.inc_open_rollup;

-- tickets.inc's triggers now keep the three rollups: a new or deleted row
-- marks its created and closed days (the team rollup takes only the closed
-- ones) and shifts the open counts.
CREATE OR REPLACE FUNCTION tickets.trg_inc_rollup_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tickets.refresh_daily_rollup(ARRAY(
        SELECT DISTINCT d FROM new_rows n,
               unnest(tickets.rollup_days_of(n.created_at_service, n.first_seen_at, n.closed_at)) AS d
         WHERE d IS NOT NULL));
    PERFORM tickets.refresh_team_rollup(ARRAY(
        SELECT DISTINCT tickets.eat_day(n.closed_at) FROM new_rows n WHERE n.closed_at IS NOT NULL));
    INSERT INTO tickets.inc_open_rollup AS r (cluster_key, team, clock_day, open)
    SELECT d.cluster_key, d.team, d.clock_day, sum(d.by)
      FROM (SELECT lower(x.cluster) AS cluster_key, nullif(btrim(x.assigned_team), '') AS team,
                   tickets.eat_day(coalesce(x.created_at_service, x.first_seen_at)) AS clock_day, 1 AS by
              FROM new_rows x
             WHERE x.is_actionable) AS d
     GROUP BY 1, 2, 3
    HAVING sum(d.by) <> 0
    ON CONFLICT (cluster_key, team, clock_day) DO UPDATE SET open = r.open + excluded.open;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION tickets.trg_inc_rollup_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tickets.refresh_daily_rollup(ARRAY(
        SELECT DISTINCT d FROM old_rows o,
               unnest(tickets.rollup_days_of(o.created_at_service, o.first_seen_at, o.closed_at)) AS d
         WHERE d IS NOT NULL));
    PERFORM tickets.refresh_team_rollup(ARRAY(
        SELECT DISTINCT tickets.eat_day(o.closed_at) FROM old_rows o WHERE o.closed_at IS NOT NULL));
    INSERT INTO tickets.inc_open_rollup AS r (cluster_key, team, clock_day, open)
    SELECT d.cluster_key, d.team, d.clock_day, sum(d.by)
      FROM (SELECT lower(x.cluster) AS cluster_key, nullif(btrim(x.assigned_team), '') AS team,
                   tickets.eat_day(coalesce(x.created_at_service, x.first_seen_at)) AS clock_day, -1 AS by
              FROM old_rows x
             WHERE x.is_actionable) AS d
     GROUP BY 1, 2, 3
    HAVING sum(d.by) <> 0
    ON CONFLICT (cluster_key, team, clock_day) DO UPDATE SET open = r.open + excluded.open;
    IF FOUND THEN
        DELETE FROM tickets.inc_open_rollup WHERE open = 0;
    END IF;
    RETURN NULL;
END
$$;

-- An update marks, for each row, the old and new created days when what a
-- creation is counted by changed, and the old and new closed days when what
-- a closure is counted by changed; the team rollup also takes the closed
-- days of a ticket whose team changed while it has no closure event (its
-- credit falls back to that team). Other columns (geometry, last_seen_at,
-- the team of a ticket whose closure events name its credit, ...) leave the
-- rollups alone.
CREATE OR REPLACE FUNCTION tickets.trg_inc_rollup_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_days date[];
    v_team_days date[];
BEGIN
    SELECT array_agg(DISTINCT d ORDER BY d) INTO v_days
      FROM old_rows o
      FULL JOIN new_rows n ON n.ticket_id = o.ticket_id,
           unnest(CASE WHEN o.ticket_id IS NULL OR n.ticket_id IS NULL
                         OR (coalesce(o.created_at_service, o.first_seen_at), o.cluster)
                            IS DISTINCT FROM (coalesce(n.created_at_service, n.first_seen_at), n.cluster)
                       THEN ARRAY[tickets.eat_day(coalesce(o.created_at_service, o.first_seen_at)),
                                  tickets.eat_day(coalesce(n.created_at_service, n.first_seen_at))] END
                  || CASE WHEN o.ticket_id IS NULL OR n.ticket_id IS NULL
                         OR (o.closed_at, o.is_actionable, o.cluster, o.mttr, o.sla_status,
                             o.created_at_service, o.first_seen_at)
                            IS DISTINCT FROM (n.closed_at, n.is_actionable, n.cluster, n.mttr, n.sla_status,
                                              n.created_at_service, n.first_seen_at)
                       THEN ARRAY[tickets.eat_day(o.closed_at), tickets.eat_day(n.closed_at)] END) AS d
     WHERE d IS NOT NULL;
    SELECT array_agg(DISTINCT d ORDER BY d) INTO v_team_days
      FROM old_rows o
      FULL JOIN new_rows n ON n.ticket_id = o.ticket_id,
           unnest(ARRAY[tickets.eat_day(o.closed_at), tickets.eat_day(n.closed_at)]) AS d
     WHERE d IS NOT NULL
       AND (o.ticket_id IS NULL OR n.ticket_id IS NULL
            OR (o.closed_at, o.is_actionable, o.cluster, o.mttr, o.sla_status,
                o.created_at_service, o.first_seen_at)
               IS DISTINCT FROM (n.closed_at, n.is_actionable, n.cluster, n.mttr, n.sla_status,
                                 n.created_at_service, n.first_seen_at)
            OR (o.assigned_team IS DISTINCT FROM n.assigned_team
                AND NOT EXISTS (SELECT FROM tickets.closure_events e WHERE e.ticket_id = n.ticket_id)));
    IF v_days IS NOT NULL THEN
        PERFORM tickets.refresh_daily_rollup(v_days);
    END IF;
    IF v_team_days IS NOT NULL THEN
        PERFORM tickets.refresh_team_rollup(v_team_days);
    END IF;
    INSERT INTO tickets.inc_open_rollup AS r (cluster_key, team, clock_day, open)
    SELECT d.cluster_key, d.team, d.clock_day, sum(d.by)
      FROM old_rows o
      FULL JOIN new_rows n ON n.ticket_id = o.ticket_id
     CROSS JOIN LATERAL (
           SELECT lower(o.cluster), nullif(btrim(o.assigned_team), ''),
                  tickets.eat_day(coalesce(o.created_at_service, o.first_seen_at)), -1
            WHERE o.is_actionable
           UNION ALL
           SELECT lower(n.cluster), nullif(btrim(n.assigned_team), ''),
                  tickets.eat_day(coalesce(n.created_at_service, n.first_seen_at)), 1
            WHERE n.is_actionable) AS d(cluster_key, team, clock_day, by)
     WHERE o.ticket_id IS NULL OR n.ticket_id IS NULL
        OR (o.is_actionable, o.cluster, o.assigned_team, o.created_at_service, o.first_seen_at)
           IS DISTINCT FROM (n.is_actionable, n.cluster, n.assigned_team, n.created_at_service, n.first_seen_at)
     GROUP BY 1, 2, 3
    HAVING sum(d.by) <> 0
    ON CONFLICT (cluster_key, team, clock_day) DO UPDATE SET open = r.open + excluded.open;
    IF FOUND THEN
        DELETE FROM tickets.inc_open_rollup WHERE open = 0;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION tickets.trg_inc_rollup_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM tickets.inc_daily_rollup;
    DELETE FROM tickets.inc_daily_mttr;
    DELETE FROM tickets.inc_team_rollup;
    DELETE FROM tickets.inc_open_rollup;
    RETURN NULL;
END
$$;

SELECT tickets.refresh_daily_rollup(NULL);
SELECT tickets.refresh_team_rollup(NULL);
ANALYZE tickets.inc_daily_rollup;
ANALYZE tickets.inc_daily_mttr;
ANALYZE tickets.inc_team_rollup;

CREATE OR REPLACE FUNCTION reporting.fn_inc_trends(
    p_from    date DEFAULT NULL,
    p_to      date DEFAULT NULL,
    p_grain   text DEFAULT 'day',
    p_cluster text DEFAULT NULL,
    p_now     timestamptz DEFAULT now())
RETURNS json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET plan_cache_mode = force_custom_plan
SET work_mem = '64MB'
SET jit = off
AS $$
DECLARE
    max_periods CONSTANT integer := 400;
    v_grain text := lower(btrim(p_grain));
    v_cluster text := lower(nullif(btrim(p_cluster), ''));
    v_step interval;
    v_periods integer;
    payload json;
BEGIN
    PERFORM reporting.inc_check_range(p_from, p_to);
    v_step := CASE v_grain WHEN 'day' THEN interval '1 day' WHEN 'week' THEN interval '1 week'
                           WHEN 'month' THEN interval '1 month' END;
    IF v_step IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('p_grain must be day, week or month (got %L)', p_grain),
            HINT = 'Use one of: day, week (ISO, Monday first), month.';
    END IF;
    v_periods := CASE v_grain
        WHEN 'day' THEN p_to - p_from + 1
        WHEN 'week' THEN (date_trunc('week', p_to::timestamp)::date - date_trunc('week', p_from::timestamp)::date) / 7 + 1
        ELSE (extract(year FROM p_to) - extract(year FROM p_from)) * 12
             + extract(month FROM p_to) - extract(month FROM p_from) + 1 END;
    IF v_periods > max_periods THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('p_grain %L gives %s periods from p_from (%s) to p_to (%s), more than %s',
                             v_grain, v_periods, p_from, p_to, max_periods),
            HINT = 'Use a coarser p_grain (week or month) or a shorter range.';
    END IF;
    WITH periods AS (
        SELECT w.from_date AS period_start, w.to_date AS period_end, w.from_ts, w.to_ts
          FROM generate_series(date_trunc(v_grain, p_from::timestamp), p_to::timestamp, v_step) AS s
         CROSS JOIN LATERAL reporting.inc_window('custom', greatest(s::date, p_from),
                                                 least((s + v_step)::date - 1, p_to), p_now) AS w
    ), series AS (
        SELECT p.period_start, p.period_end, c.created, c.closed, coalesce(a.mttr_parts, c.mttr_parts) AS mttr_parts,
               c.compliant, c.breached,
               c.c48_within, c.c48_breached,
               CASE WHEN d.snapshot_date IS NULL THEN NULL
                    WHEN v_cluster IS NULL THEN d.open_total
                    WHEN d.open_by_cluster IS NULL THEN NULL
                    ELSE (SELECT coalesce(sum(b.value::bigint), 0) FROM jsonb_each_text(d.open_by_cluster) b
                           WHERE lower(b.key) = v_cluster) END AS backlog_end,
               CASE WHEN d.snapshot_date IS NULL THEN NULL
                    WHEN v_cluster IS NULL THEN d.open_breached
                    WHEN d.breached_by_cluster IS NULL THEN NULL
                    ELSE (SELECT coalesce(sum(b.value::bigint), 0) FROM jsonb_each_text(d.breached_by_cluster) b
                           WHERE lower(b.key) = v_cluster) END AS breached_end
          FROM periods p
         CROSS JOIN LATERAL (
               SELECT coalesce(sum(r.created), 0)::bigint AS created,
                      coalesce(sum(r.closed), 0)::bigint AS closed,
                      coalesce(sum(r.compliant), 0)::bigint AS compliant,
                      coalesce(sum(r.breached), 0)::bigint AS breached,
                      coalesce(sum(r.c48_within), 0)::bigint AS c48_within,
                      coalesce(sum(r.c48_breached), 0)::bigint AS c48_breached,
                      array_agg(ROW(r.mttrs, r.mttr_buckets, r.mttr_counts)::tickets.mttr_part)
                          FILTER (WHERE r.mttrs IS NOT NULL AND v_cluster IS NOT NULL) AS mttr_parts
                 FROM tickets.inc_daily_rollup r
                WHERE r.day BETWEEN p.period_start AND p.period_end
                  AND (v_cluster IS NULL OR r.cluster_key = v_cluster)) c
         CROSS JOIN LATERAL (
               -- over all clusters, one row a day
               SELECT array_agg(ROW(m.mttrs, m.mttr_buckets, m.mttr_counts)::tickets.mttr_part) AS mttr_parts
                 FROM tickets.inc_daily_mttr m
                WHERE v_cluster IS NULL AND m.day BETWEEN p.period_start AND p.period_end) a
          LEFT JOIN tickets.inc_daily_snapshot d ON d.snapshot_date = p.period_end
    )
    SELECT json_build_object(
        'grain', v_grain,
        'from', p_from,
        'to', p_to,
        'cluster', nullif(btrim(p_cluster), ''),
        'freshness', reporting.inc_freshness(p_now),
        'series', coalesce((
            SELECT json_agg(json_build_object(
                       'period_start', s.period_start,
                       'period_end', s.period_end,
                       'created', s.created,
                       'closed', s.closed,
                       'closure_ratio', reporting.ratio(s.closed, s.created),
                       'backlog_end', s.backlog_end,
                       'breached_end', s.breached_end,
                       'mttr_minutes', reporting.mttr_summary_of(s.mttr_parts),
                       'sla_compliance', reporting.sla_summary(s.closed, s.compliant, s.breached),
                       'contract_48h', reporting.contract_48h_summary(s.closed, s.c48_within, s.c48_breached))
                   ORDER BY s.period_start)
              FROM series s), '[]'::json))
      INTO payload;
    RETURN payload;
END
$$;

CREATE OR REPLACE FUNCTION reporting.fn_team_closures(
    p_from    date DEFAULT NULL,
    p_to      date DEFAULT NULL,
    p_cluster text DEFAULT NULL,
    p_now     timestamptz DEFAULT now())
RETURNS json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET plan_cache_mode = force_custom_plan
SET work_mem = '64MB'
SET jit = off
AS $$
DECLARE
    w record;
    v_cluster text := lower(nullif(btrim(p_cluster), ''));
    payload json;
BEGIN
    PERFORM reporting.inc_check_range(p_from, p_to);
    w := reporting.inc_window('custom', p_from, p_to, p_now);
    -- A team's name is the most frequent spelling among its closures (or,
    -- without closures, among its open tickets); ties go to the first in
    -- byte order, as mode() WITHIN GROUP (ORDER BY ... COLLATE "C") picks.
    WITH closed_rows AS MATERIALIZED (
        SELECT r.team, r.closed, r.mttrs, r.mttr_buckets, r.mttr_counts,
               r.compliant, r.breached, r.c48_within, r.c48_breached
          FROM tickets.inc_team_rollup r
         WHERE r.day BETWEEN w.from_date AND w.to_date
           AND (v_cluster IS NULL OR r.cluster_key = v_cluster)
    ), closed_spellings AS (
        SELECT coalesce(lower(r.team), '') AS team_key, r.team, sum(r.closed) AS n
          FROM closed_rows r
         GROUP BY r.team
    ), closed AS (
        SELECT coalesce(lower(r.team), '') AS team_key,
               sum(r.closed)::bigint AS closed,
               array_agg(ROW(r.mttrs, r.mttr_buckets, r.mttr_counts)::tickets.mttr_part)
                   FILTER (WHERE r.mttrs IS NOT NULL) AS mttr_parts,
               sum(r.compliant)::bigint AS compliant, sum(r.breached)::bigint AS breached,
               sum(r.c48_within)::bigint AS c48_within, sum(r.c48_breached)::bigint AS c48_breached
          FROM closed_rows r
         GROUP BY 1
    ), closed_names AS (
        SELECT s.team_key, (array_agg(s.team ORDER BY s.n DESC, s.team COLLATE "C")
                               FILTER (WHERE s.team IS NOT NULL))[1] AS team
          FROM closed_spellings s
         GROUP BY s.team_key
    ), closed_named AS (
        SELECT c.*, n.team FROM closed c JOIN closed_names n ON n.team_key = c.team_key
    ), open_spellings AS (
        -- Open now, and breached at p_now (the SLA clock more than 48 hours
        -- before it, inc_open_sla_at's rule): every clock day before the
        -- day of p_now - 48 h from the open rollup, and that day's tickets
        -- up to the instant from the open tickets' clock index.
        SELECT x.team, sum(x.open_now) AS open_now, sum(x.open_breached_now) AS open_breached_now
          FROM (SELECT r.team, r.open AS open_now,
                       CASE WHEN r.clock_day < tickets.eat_day(p_now - interval '48 hours') THEN r.open ELSE 0 END
                           AS open_breached_now
                  FROM tickets.inc_open_rollup r
                 WHERE v_cluster IS NULL OR r.cluster_key = v_cluster
                UNION ALL
                SELECT nullif(btrim(i.assigned_team), ''), 0, 1
                  FROM tickets.inc i
                 WHERE i.is_actionable
                   AND coalesce(i.created_at_service, i.first_seen_at)
                       >= tickets.eat_day(p_now - interval '48 hours')::timestamp AT TIME ZONE 'Africa/Nairobi'
                   AND coalesce(i.created_at_service, i.first_seen_at) < p_now - interval '48 hours'
                   AND (v_cluster IS NULL OR lower(i.cluster) = v_cluster)) AS x
         GROUP BY x.team
    ), open_now AS (
        SELECT coalesce(lower(o.team), '') AS team_key,
               (array_agg(o.team ORDER BY o.open_now DESC, o.team COLLATE "C")
                   FILTER (WHERE o.team IS NOT NULL))[1] AS team,
               sum(o.open_now)::bigint AS open_now,
               sum(o.open_breached_now)::bigint AS open_breached_now
          FROM open_spellings o
         GROUP BY 1
    ), teams AS (
        SELECT coalesce(c.team_key, o.team_key) AS team_key, coalesce(c.team, o.team) AS team,
               coalesce(c.closed, 0) AS closed, c.mttr_parts,
               coalesce(c.compliant, 0) AS compliant, coalesce(c.breached, 0) AS breached,
               coalesce(c.c48_within, 0) AS c48_within, coalesce(c.c48_breached, 0) AS c48_breached,
               coalesce(o.open_now, 0) AS open_now, coalesce(o.open_breached_now, 0) AS open_breached_now
          FROM closed_named c FULL JOIN open_now o ON o.team_key = c.team_key
    )
    SELECT json_build_object(
        'from', p_from,
        'to', p_to,
        'cluster', nullif(btrim(p_cluster), ''),
        'teams', coalesce((
            SELECT json_agg(json_build_object(
                       'team', t.team,
                       'closed', t.closed,
                       'mttr_minutes', reporting.mttr_summary_of(t.mttr_parts),
                       'sla_compliance', reporting.sla_summary(t.closed, t.compliant, t.breached),
                       'contract_48h', reporting.contract_48h_summary(t.closed, t.c48_within, t.c48_breached),
                       'open_now', t.open_now,
                       'open_breached_now', t.open_breached_now)
                   ORDER BY t.team_key = '', t.closed DESC, t.open_now DESC, t.team_key)
              FROM teams t), '[]'::json))
      INTO payload;
    RETURN payload;
END
$$;

DO $$
DECLARE
    v_postgis name := (SELECT n.nspname FROM pg_extension e
                         JOIN pg_namespace n ON n.oid = e.extnamespace
                        WHERE e.extname = 'postgis');
BEGIN
    EXECUTE format('ALTER FUNCTION reporting.fn_inc_trends(date, date, text, text, timestamptz) '
                   'SET search_path = pg_catalog, %I, pg_temp', v_postgis);
    EXECUTE format('ALTER FUNCTION reporting.fn_team_closures(date, date, text, timestamptz) '
                   'SET search_path = pg_catalog, %I, pg_temp', v_postgis);
END
$$;

-- Internal routines: none for PUBLIC (the entry points keep their grants).
REVOKE EXECUTE ON FUNCTION tickets.mttr_bucket_bounds() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tickets.mttr_histogram(integer[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION reporting.mttr_percentiles_of(tickets.mttr_part[], bigint) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION reporting.mttr_summary_of(tickets.mttr_part[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tickets.refresh_team_rollup(date[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tickets.trg_closure_events_rollup() FROM PUBLIC;
