-- The trends and team rollups are shifted by what each statement changed,
-- instead of recomputing every day a changed ticket touched.
--
-- Migrations 37 and 38 kept tickets.inc_daily_rollup, inc_daily_mttr and
-- inc_team_rollup exact by recomputing, in the writing transaction, each
-- EAT day a changed ticket was created or closed on, over every ticket of
-- that day. The cost grew with the days' tickets, not with the change: on a
-- million tickets a 20,000-row delta spent ~20 s recomputing days, and a
-- first capture ~17 s recomputing the team rollup of every closure day.
-- Now each statement's old rows are taken away and its new rows added:
--
-- * tickets.rollup_marks: what one ticket row counts for. Its creation (the
--   EAT day of its SLA clock) and, when it is closed and not actionable, its
--   closure (the EAT day of closed_at, its mttr, its SLA and 48-hour class),
--   with the rule functions the dashboard and the refresh functions count by.
-- * tickets.rollup_deltas_sql: over a set of signed rows, the net change of
--   each rollup key (day and cluster; day, cluster and team): counts, and the
--   mttr values added and taken away. A value added and taken away cancels.
-- * tickets.apply_daily_rollup_deltas / apply_team_rollup_deltas merge the
--   changes into the rows: counts summed, mttr values kept sorted (a
--   multiset difference), bucket counts shifted; a row left counting nothing
--   is deleted. A change a row cannot take (a value to take away that it
--   does not hold, a count below zero: the rollup was out of step with the
--   tickets) has its day recomputed in full instead, with a warning and a
--   row in tickets.rollup_repairs.
-- * tickets.closure_credit holds each ticket's credited team from its
--   newest closure event, as the team rollup counts it. The tickets.inc
--   triggers read a changed row's credit there (else the row's own
--   assigned_team); the closure_events triggers compare it with the events'
--   newest after the statement, move the closures whose credit changed
--   from the old team's row to the new one's, and update it. Comparing with
--   what was counted, not with a reconstruction of the events before the
--   statement, keeps this exact when one statement both deletes and inserts
--   events (tickets.derive_closures does), whose triggers fire after it all.
--
-- tickets.refresh_daily_rollup and refresh_team_rollup still recompute days
-- in full (NULL: every day); the truncate triggers and the out-of-step
-- recovery use them.
-- The rollups' contents, and so every payload, are unchanged.

-- What one ticket row counts for in the rollups: a creation mark, and a
-- closure mark when it is closed and not actionable (inc_created_between's
-- and inc_closed_between's rows, one day's window each).
CREATE FUNCTION tickets.rollup_marks(
    p_closed_at timestamptz, p_is_actionable boolean, p_cluster text, p_mttr integer, p_sla_status text,
    p_created_at_service timestamptz, p_first_seen_at timestamptz)
RETURNS TABLE (closure boolean, day date, cluster_key text, created integer, closed integer, mttr integer,
               compliant integer, breached integer, c48_within integer, c48_breached integer)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT false, tickets.eat_day(coalesce(p_created_at_service, p_first_seen_at)), lower(p_cluster),
           1, 0, NULL::integer, 0, 0, 0, 0
     WHERE coalesce(p_created_at_service, p_first_seen_at) IS NOT NULL
    UNION ALL
    SELECT true, tickets.eat_day(p_closed_at), lower(p_cluster), 0, 1, p_mttr,
           CASE WHEN reporting.closure_sla(p_sla_status) = 'compliant' THEN 1 ELSE 0 END,
           CASE WHEN reporting.closure_sla(p_sla_status) = 'breached' THEN 1 ELSE 0 END,
           CASE WHEN reporting.closure_contract_48h(p_closed_at, p_created_at_service, p_first_seen_at) = 'within'
                THEN 1 ELSE 0 END,
           CASE WHEN reporting.closure_contract_48h(p_closed_at, p_created_at_service, p_first_seen_at) = 'breached'
                THEN 1 ELSE 0 END
     WHERE p_closed_at IS NOT NULL AND p_is_actionable IS NOT TRUE
$$;
COMMENT ON FUNCTION tickets.rollup_marks(timestamptz, boolean, text, integer, text, timestamptz, timestamptz) IS
    'What one ticket row counts for in the trends and team rollups: its creation and, when closed and not actionable, its closure.';

-- The net change of one rollup key.
CREATE TYPE tickets.rollup_delta AS (
    day          date,
    cluster_key  text,
    team         text,
    created      bigint,
    closed       bigint,
    compliant    bigint,
    breached     bigint,
    c48_within   bigint,
    c48_breached bigint,
    mttr_added   integer[],  -- ascending; NULL when none
    mttr_removed integer[]   -- ascending; NULL when none
);

-- The values of a (value, net count) list whose count has the given sign,
-- each repeated as often as its count says, ascending.
CREATE FUNCTION tickets.mttr_values_of(p_values integer[], p_nets bigint[], p_sign integer)
RETURNS integer[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array_agg(u.v ORDER BY u.v)
      FROM unnest(p_values, p_nets) AS u(v, n)
     CROSS JOIN LATERAL generate_series(1, u.n * p_sign) AS r
$$;

-- The query that computes the rollups' changes from a set of signed rows.
-- p_rows is a query giving (sign, closed_at, is_actionable, cluster, mttr,
-- sla_status, created_at_service, first_seen_at, team), team being the
-- credited team before nullif(btrim()); the query gives two arrays of
-- tickets.rollup_delta: the trends rollup's keys and the team rollup's.
-- Text, because the rows usually come from a trigger's transition tables,
-- which only the trigger's own statements can read.
CREATE FUNCTION tickets.rollup_deltas_sql(p_rows text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$
SELECT format($q$
WITH marks AS MATERIALIZED (
    SELECT x.sign, m.closure, m.day, m.cluster_key, nullif(btrim(x.team), '') AS team,
           m.created, m.closed, m.mttr, m.compliant, m.breached, m.c48_within, m.c48_breached
      FROM (%s) AS x(sign, closed_at, is_actionable, cluster, mttr, sla_status, created_at_service, first_seen_at, team)
     CROSS JOIN LATERAL tickets.rollup_marks(x.closed_at, x.is_actionable, x.cluster, x.mttr, x.sla_status,
                                             x.created_at_service, x.first_seen_at) AS m
), daily AS (
    SELECT g.day, g.cluster_key, sum(g.created) AS created, sum(g.closed) AS closed,
           sum(g.compliant) AS compliant, sum(g.breached) AS breached,
           sum(g.c48_within) AS c48_within, sum(g.c48_breached) AS c48_breached,
           array_agg(g.mttr ORDER BY g.mttr) FILTER (WHERE g.net <> 0) AS mttr_values,
           array_agg(g.net ORDER BY g.mttr) FILTER (WHERE g.net <> 0) AS mttr_nets
      FROM (SELECT k.day, k.cluster_key, k.mttr,
                   sum(k.sign * k.created) AS created, sum(k.sign * k.closed) AS closed,
                   sum(k.sign * k.compliant) AS compliant, sum(k.sign * k.breached) AS breached,
                   sum(k.sign * k.c48_within) AS c48_within, sum(k.sign * k.c48_breached) AS c48_breached,
                   sum(k.sign) FILTER (WHERE k.mttr IS NOT NULL) AS net
              FROM marks k
             GROUP BY k.day, k.cluster_key, k.mttr) AS g
     GROUP BY g.day, g.cluster_key
), team AS (
    SELECT g.day, g.cluster_key, g.team, sum(g.closed) AS closed,
           sum(g.compliant) AS compliant, sum(g.breached) AS breached,
           sum(g.c48_within) AS c48_within, sum(g.c48_breached) AS c48_breached,
           array_agg(g.mttr ORDER BY g.mttr) FILTER (WHERE g.net <> 0) AS mttr_values,
           array_agg(g.net ORDER BY g.mttr) FILTER (WHERE g.net <> 0) AS mttr_nets
      FROM (SELECT k.day, k.cluster_key, k.team, k.mttr, sum(k.sign * k.closed) AS closed,
                   sum(k.sign * k.compliant) AS compliant, sum(k.sign * k.breached) AS breached,
                   sum(k.sign * k.c48_within) AS c48_within, sum(k.sign * k.c48_breached) AS c48_breached,
                   sum(k.sign) FILTER (WHERE k.mttr IS NOT NULL) AS net
              FROM marks k
             WHERE k.closure
             GROUP BY k.day, k.cluster_key, k.team, k.mttr) AS g
     GROUP BY g.day, g.cluster_key, g.team
)
SELECT (SELECT array_agg(ROW(d.day, d.cluster_key, NULL, d.created, d.closed, d.compliant, d.breached,
                             d.c48_within, d.c48_breached,
                             tickets.mttr_values_of(d.mttr_values, d.mttr_nets, 1),
                             tickets.mttr_values_of(d.mttr_values, d.mttr_nets, -1))::tickets.rollup_delta)
          FROM daily d
         WHERE d.mttr_values IS NOT NULL
            OR (d.created, d.closed, d.compliant, d.breached, d.c48_within, d.c48_breached) <> (0, 0, 0, 0, 0, 0)),
       (SELECT array_agg(ROW(t.day, t.cluster_key, t.team, 0, t.closed, t.compliant, t.breached,
                             t.c48_within, t.c48_breached,
                             tickets.mttr_values_of(t.mttr_values, t.mttr_nets, 1),
                             tickets.mttr_values_of(t.mttr_values, t.mttr_nets, -1))::tickets.rollup_delta)
          FROM team t
         WHERE t.mttr_values IS NOT NULL
            OR (t.closed, t.compliant, t.breached, t.c48_within, t.c48_breached) <> (0, 0, 0, 0, 0))
$q$, p_rows)
$f$;

-- A sorted mttr array with values taken away and added (both ascending),
-- still ascending; NULL when empty. A value to take away that the array
-- does not hold is ignored: the callers compare cardinalities. A few
-- changes are spliced in at the positions a binary search finds
-- (width_bucket over the sorted array counts its values up to a value),
-- each a copy of the array; many are one sort of the whole, which costs
-- about as much as a few hundred copies.
CREATE FUNCTION tickets.mttrs_merged(p_sorted integer[], p_added integer[], p_removed integer[],
                                     p_splice_up_to integer DEFAULT 256)
RETURNS integer[] LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    v_result integer[] := coalesce(p_sorted, '{}');
    v integer;
    v_at integer;
BEGIN
    IF p_added IS NULL AND p_removed IS NULL THEN
        RETURN p_sorted;
    ELSIF p_sorted IS NULL AND p_removed IS NULL THEN
        RETURN p_added;
    ELSIF coalesce(cardinality(p_added), 0) + coalesce(cardinality(p_removed), 0) > p_splice_up_to THEN
        RETURN (SELECT array_agg(x.v ORDER BY x.v)
                  FROM ((SELECT unnest(p_sorted) EXCEPT ALL SELECT unnest(p_removed))
                        UNION ALL SELECT unnest(p_added)) AS x(v));
    END IF;
    FOREACH v IN ARRAY coalesce(p_removed, '{}') LOOP
        IF cardinality(v_result) > 0 THEN
            v_at := width_bucket(v, v_result);  -- the last position holding a value <= v
            IF v_at > 0 AND v_result[v_at] = v THEN
                v_result := v_result[:v_at - 1] || v_result[v_at + 1:];
            END IF;
        END IF;
    END LOOP;
    FOREACH v IN ARRAY coalesce(p_added, '{}') LOOP
        v_at := CASE WHEN cardinality(v_result) = 0 THEN 0 ELSE width_bucket(v, v_result) END;
        v_result := v_result[:v_at] || v || v_result[v_at + 1:];
    END LOOP;
    RETURN nullif(v_result, '{}');
END
$$;

-- Bucket counts (tickets.mttr_histogram's) shifted by values added and
-- taken away: the non-empty buckets, ascending, and their counts.
CREATE FUNCTION tickets.mttr_histogram_merged(
    p_buckets integer[], p_counts integer[], p_added integer[], p_removed integer[],
    OUT buckets integer[], OUT counts integer[])
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array_agg(h.b ORDER BY h.b), array_agg(h.n ORDER BY h.b)
      FROM (SELECT x.b, sum(x.n)::integer AS n
              FROM (SELECT u.b, u.n FROM unnest(p_buckets, p_counts) AS u(b, n)
                    UNION ALL
                    SELECT width_bucket(v, tickets.mttr_bucket_bounds()), 1 FROM unnest(p_added) AS v
                    UNION ALL
                    SELECT width_bucket(v, tickets.mttr_bucket_bounds()), -1 FROM unnest(p_removed) AS v) AS x
             GROUP BY x.b
            HAVING sum(x.n) <> 0) AS h
$$;

-- The rollups are read, merged and written back by each writing
-- transaction: two at once would each write what they read before the
-- other committed, and one change would be lost. Writers of tickets.inc
-- and closure_events take this lock (held to commit) before they read a
-- rollup or a credit; each statement after it reads what the one before
-- committed. Ingest runs one at a time anyway; this orders a hand edit
-- against a run. Two-key form: no job lock (one bigint key) can collide.
CREATE FUNCTION tickets.lock_rollups() RETURNS void LANGUAGE sql AS $$
    SELECT pg_advisory_xact_lock(hashtext('fleettickets'), hashtext('rollups'))
$$;

-- Days a rollup was found out of step with tickets.inc and recomputed. The
-- triggers keep the rollups exact, so a row here means something wrote a
-- rollup by hand, or a bug: it is kept for whoever investigates.
CREATE TABLE tickets.rollup_repairs (
    repaired_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    rollup      regclass NOT NULL,
    days        date[] NOT NULL
);
COMMENT ON TABLE tickets.rollup_repairs IS
    'When a rollup could not take a change (out of step with tickets.inc) and which of its days were recomputed instead.';

-- Merges changes into tickets.inc_daily_rollup and tickets.inc_daily_mttr.
CREATE FUNCTION tickets.apply_daily_rollup_deltas(p_deltas tickets.rollup_delta[])
RETURNS void LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    v_days date[];
    v_stale date[];
    v_stale_days date[];
BEGIN
    PERFORM tickets.lock_rollups();
    IF p_deltas IS NULL THEN
        RETURN;
    END IF;
    WITH merged AS MATERIALIZED (
        SELECT d.day, d.cluster_key,
               coalesce(r.created, 0) + d.created AS created,
               coalesce(r.closed, 0) + d.closed AS closed,
               m.mttrs, h.buckets, h.counts,
               coalesce(r.compliant, 0) + d.compliant AS compliant,
               coalesce(r.breached, 0) + d.breached AS breached,
               coalesce(r.c48_within, 0) + d.c48_within AS c48_within,
               coalesce(r.c48_breached, 0) + d.c48_breached AS c48_breached,
               coalesce(cardinality(m.mttrs), 0) = coalesce(cardinality(r.mttrs), 0)
                   + coalesce(cardinality(d.mttr_added), 0) - coalesce(cardinality(d.mttr_removed), 0)
               AND least(coalesce(r.created, 0) + d.created, coalesce(r.closed, 0) + d.closed,
                         coalesce(r.compliant, 0) + d.compliant, coalesce(r.breached, 0) + d.breached,
                         coalesce(r.c48_within, 0) + d.c48_within, coalesce(r.c48_breached, 0) + d.c48_breached) >= 0
                   AS fits
          FROM unnest(p_deltas) AS d
          LEFT JOIN tickets.inc_daily_rollup r ON r.day = d.day AND r.cluster_key IS NOT DISTINCT FROM d.cluster_key
         CROSS JOIN LATERAL (SELECT tickets.mttrs_merged(r.mttrs, d.mttr_added, d.mttr_removed) AS mttrs) AS m
         CROSS JOIN LATERAL tickets.mttr_histogram_merged(r.mttr_buckets, r.mttr_counts,
                                                          d.mttr_added, d.mttr_removed) AS h
    ), written AS (
        INSERT INTO tickets.inc_daily_rollup AS r (day, cluster_key, created, closed, mttrs, mttr_buckets,
                                                   mttr_counts, compliant, breached, c48_within, c48_breached)
        SELECT m.day, m.cluster_key, m.created, m.closed, m.mttrs, m.buckets, m.counts,
               m.compliant, m.breached, m.c48_within, m.c48_breached
          FROM merged m
         WHERE m.fits
        ON CONFLICT (day, cluster_key) DO UPDATE
           SET created = excluded.created, closed = excluded.closed, mttrs = excluded.mttrs,
               mttr_buckets = excluded.mttr_buckets, mttr_counts = excluded.mttr_counts,
               compliant = excluded.compliant, breached = excluded.breached,
               c48_within = excluded.c48_within, c48_breached = excluded.c48_breached
        RETURNING r.day
    )
    SELECT (SELECT array_agg(DISTINCT w.day) FROM written w), array_agg(DISTINCT m.day) FILTER (WHERE NOT m.fits)
      INTO v_days, v_stale
      FROM merged m;
    DELETE FROM tickets.inc_daily_rollup WHERE day = ANY (v_days) AND created = 0 AND closed = 0;

    -- Each day's values of every cluster together.
    WITH day_changes AS (
        SELECT d.day,
               array_agg(c.v ORDER BY c.v) FILTER (WHERE c.sign > 0) AS added,
               array_agg(c.v ORDER BY c.v) FILTER (WHERE c.sign < 0) AS removed
          FROM unnest(p_deltas) AS d
         CROSS JOIN LATERAL (SELECT 1, unnest(d.mttr_added) UNION ALL SELECT -1, unnest(d.mttr_removed)) AS c(sign, v)
         WHERE d.day <> ALL (coalesce(v_stale, '{}'))
         GROUP BY d.day
    ), merged AS MATERIALIZED (
        SELECT c.day, m.mttrs, h.buckets, h.counts,
               coalesce(cardinality(m.mttrs), 0) = coalesce(cardinality(r.mttrs), 0)
                   + coalesce(cardinality(c.added), 0) - coalesce(cardinality(c.removed), 0) AS fits
          FROM day_changes c
          LEFT JOIN tickets.inc_daily_mttr r ON r.day = c.day
         CROSS JOIN LATERAL (SELECT tickets.mttrs_merged(r.mttrs, c.added, c.removed) AS mttrs) AS m
         CROSS JOIN LATERAL tickets.mttr_histogram_merged(r.mttr_buckets, r.mttr_counts, c.added, c.removed) AS h
    ), written AS (
        INSERT INTO tickets.inc_daily_mttr AS r (day, mttrs, mttr_buckets, mttr_counts)
        SELECT m.day, coalesce(m.mttrs, '{}'), coalesce(m.buckets, '{}'), coalesce(m.counts, '{}')
          FROM merged m
         WHERE m.fits
        ON CONFLICT (day) DO UPDATE
           SET mttrs = excluded.mttrs, mttr_buckets = excluded.mttr_buckets, mttr_counts = excluded.mttr_counts
        RETURNING r.day
    )
    SELECT (SELECT array_agg(w.day) FROM written w), array_agg(m.day) FILTER (WHERE NOT m.fits)
      INTO v_days, v_stale_days
      FROM merged m;
    DELETE FROM tickets.inc_daily_mttr WHERE day = ANY (v_days) AND mttrs = '{}';

    v_stale := ARRAY(SELECT DISTINCT d FROM unnest(v_stale || v_stale_days) AS d ORDER BY d);
    IF cardinality(v_stale) > 0 THEN
        RAISE WARNING 'tickets.inc_daily_rollup was out of step with tickets.inc on %; recomputed those days',
            array_to_string(v_stale, ', ');
        INSERT INTO tickets.rollup_repairs (rollup, days) VALUES ('tickets.inc_daily_rollup', v_stale);
        PERFORM tickets.refresh_daily_rollup(v_stale);
    END IF;
END
$$;

-- Merges changes into tickets.inc_team_rollup.
CREATE FUNCTION tickets.apply_team_rollup_deltas(p_deltas tickets.rollup_delta[])
RETURNS void LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    v_days date[];
    v_stale date[];
BEGIN
    PERFORM tickets.lock_rollups();
    IF p_deltas IS NULL THEN
        RETURN;
    END IF;
    WITH merged AS MATERIALIZED (
        SELECT d.day, d.cluster_key, d.team,
               coalesce(r.closed, 0) + d.closed AS closed,
               m.mttrs, h.buckets, h.counts,
               coalesce(r.compliant, 0) + d.compliant AS compliant,
               coalesce(r.breached, 0) + d.breached AS breached,
               coalesce(r.c48_within, 0) + d.c48_within AS c48_within,
               coalesce(r.c48_breached, 0) + d.c48_breached AS c48_breached,
               coalesce(cardinality(m.mttrs), 0) = coalesce(cardinality(r.mttrs), 0)
                   + coalesce(cardinality(d.mttr_added), 0) - coalesce(cardinality(d.mttr_removed), 0)
               AND least(coalesce(r.closed, 0) + d.closed,
                         coalesce(r.compliant, 0) + d.compliant, coalesce(r.breached, 0) + d.breached,
                         coalesce(r.c48_within, 0) + d.c48_within, coalesce(r.c48_breached, 0) + d.c48_breached) >= 0
                   AS fits
          FROM unnest(p_deltas) AS d
          LEFT JOIN tickets.inc_team_rollup r
            ON r.day = d.day AND r.cluster_key IS NOT DISTINCT FROM d.cluster_key AND r.team IS NOT DISTINCT FROM d.team
         CROSS JOIN LATERAL (SELECT tickets.mttrs_merged(r.mttrs, d.mttr_added, d.mttr_removed) AS mttrs) AS m
         CROSS JOIN LATERAL tickets.mttr_histogram_merged(r.mttr_buckets, r.mttr_counts,
                                                          d.mttr_added, d.mttr_removed) AS h
    ), written AS (
        INSERT INTO tickets.inc_team_rollup AS r (day, cluster_key, team, closed, mttrs, mttr_buckets, mttr_counts,
                                                  compliant, breached, c48_within, c48_breached)
        SELECT m.day, m.cluster_key, m.team, m.closed, m.mttrs, m.buckets, m.counts,
               m.compliant, m.breached, m.c48_within, m.c48_breached
          FROM merged m
         WHERE m.fits
        ON CONFLICT (day, cluster_key, team) DO UPDATE
           SET closed = excluded.closed, mttrs = excluded.mttrs,
               mttr_buckets = excluded.mttr_buckets, mttr_counts = excluded.mttr_counts,
               compliant = excluded.compliant, breached = excluded.breached,
               c48_within = excluded.c48_within, c48_breached = excluded.c48_breached
        RETURNING r.day
    )
    SELECT (SELECT array_agg(DISTINCT w.day) FROM written w), array_agg(DISTINCT m.day) FILTER (WHERE NOT m.fits)
      INTO v_days, v_stale
      FROM merged m;
    DELETE FROM tickets.inc_team_rollup WHERE day = ANY (v_days) AND closed = 0;
    IF v_stale IS NOT NULL THEN
        RAISE WARNING 'tickets.inc_team_rollup was out of step with tickets.inc on %; recomputed those days',
            array_to_string(v_stale, ', ');
        INSERT INTO tickets.rollup_repairs (rollup, days) VALUES ('tickets.inc_team_rollup', v_stale);
        PERFORM tickets.refresh_team_rollup(v_stale);
    END IF;
END
$$;

-- Each ticket's credited team as the team rollup counts it: the team its
-- newest closure event names. A ticket without closure events has no row
-- and is credited to tickets.inc's assigned_team.
CREATE TABLE tickets.closure_credit (
    ticket_id     text PRIMARY KEY,
    assigned_team text
);
COMMENT ON TABLE tickets.closure_credit IS
    'Per ticket with closure events: the assigned_team of its newest event, the team inc_team_rollup credits its closure to. Kept by the closure_events triggers with the rollup.';
INSERT INTO tickets.closure_credit (ticket_id, assigned_team)
SELECT DISTINCT ON (e.ticket_id) e.ticket_id, e.assigned_team
  FROM tickets.closure_events e
 ORDER BY e.ticket_id, e.observed_at DESC;
ANALYZE tickets.closure_credit;

-- The rows of a transition table as tickets.rollup_deltas_sql reads them,
-- each with its credit from closure_credit (else its own assigned_team).
CREATE FUNCTION tickets.rollup_rows_sql(p_sign integer, p_table text, p_alias text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT format('SELECT %1$s, %2$s.closed_at, %2$s.is_actionable, %2$s.cluster, %2$s.mttr, %2$s.sla_status, '
                  '%2$s.created_at_service, %2$s.first_seen_at, '
                  'CASE WHEN c.ticket_id IS NOT NULL THEN c.assigned_team ELSE %2$s.assigned_team END '
                  'FROM %3$s LEFT JOIN tickets.closure_credit c ON c.ticket_id = %2$s.ticket_id',
                  p_sign, p_alias, p_table)
$$;

-- The triggers' statements are planned on each call (EXECUTE), for three
-- rows or a million; without JIT, whose compilation cost seconds on plans
-- that run in milliseconds.
CREATE OR REPLACE FUNCTION tickets.trg_inc_rollup_insert() RETURNS trigger
LANGUAGE plpgsql SET jit = off SET work_mem = '64MB' AS $$
DECLARE
    v_daily tickets.rollup_delta[];
    v_team tickets.rollup_delta[];
BEGIN
    PERFORM tickets.lock_rollups();
    EXECUTE tickets.rollup_deltas_sql(tickets.rollup_rows_sql(1, 'new_rows n', 'n')) INTO v_daily, v_team;
    PERFORM tickets.apply_daily_rollup_deltas(v_daily);
    PERFORM tickets.apply_team_rollup_deltas(v_team);
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

CREATE OR REPLACE FUNCTION tickets.trg_inc_rollup_delete() RETURNS trigger
LANGUAGE plpgsql SET jit = off SET work_mem = '64MB' AS $$
DECLARE
    v_daily tickets.rollup_delta[];
    v_team tickets.rollup_delta[];
BEGIN
    PERFORM tickets.lock_rollups();
    EXECUTE tickets.rollup_deltas_sql(tickets.rollup_rows_sql(-1, 'old_rows o', 'o')) INTO v_daily, v_team;
    PERFORM tickets.apply_daily_rollup_deltas(v_daily);
    PERFORM tickets.apply_team_rollup_deltas(v_team);
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

-- An update takes away the old version and adds the new one of each row
-- whose counted columns or team changed (the team moves its credit only
-- while the ticket has no closure event, which the credit lookup decides);
-- a row matched by ticket_id on neither side (a changed key) counts as a
-- delete and an insert. Other columns (geometry, last_seen_at, ...) leave
-- the rollups alone.
CREATE OR REPLACE FUNCTION tickets.trg_inc_rollup_update() RETURNS trigger
LANGUAGE plpgsql SET jit = off SET work_mem = '64MB' AS $$
DECLARE
    v_daily tickets.rollup_delta[];
    v_team tickets.rollup_delta[];
BEGIN
    PERFORM tickets.lock_rollups();
    EXECUTE tickets.rollup_deltas_sql($rows$
        SELECT s.sign, s.closed_at, s.is_actionable, s.cluster, s.mttr, s.sla_status,
               s.created_at_service, s.first_seen_at, s.team
          FROM old_rows o
          FULL JOIN new_rows n ON n.ticket_id = o.ticket_id
          LEFT JOIN tickets.closure_credit c ON c.ticket_id = coalesce(n.ticket_id, o.ticket_id)
         CROSS JOIN LATERAL (
               VALUES (-1, o.ticket_id IS NOT NULL, o.closed_at, o.is_actionable, o.cluster, o.mttr, o.sla_status,
                       o.created_at_service, o.first_seen_at,
                       CASE WHEN c.ticket_id IS NOT NULL THEN c.assigned_team ELSE o.assigned_team END),
                      (1, n.ticket_id IS NOT NULL, n.closed_at, n.is_actionable, n.cluster, n.mttr, n.sla_status,
                       n.created_at_service, n.first_seen_at,
                       CASE WHEN c.ticket_id IS NOT NULL THEN c.assigned_team ELSE n.assigned_team END))
               AS s(sign, present, closed_at, is_actionable, cluster, mttr, sla_status, created_at_service,
                    first_seen_at, team)
         WHERE s.present
           AND (o.ticket_id IS NULL OR n.ticket_id IS NULL
                OR (o.closed_at, o.is_actionable, o.cluster, o.mttr, o.sla_status, o.created_at_service,
                    o.first_seen_at, o.assigned_team)
                   IS DISTINCT FROM (n.closed_at, n.is_actionable, n.cluster, n.mttr, n.sla_status,
                                     n.created_at_service, n.first_seen_at, n.assigned_team))
        $rows$)
       INTO v_daily, v_team;
    PERFORM tickets.apply_daily_rollup_deltas(v_daily);
    PERFORM tickets.apply_team_rollup_deltas(v_team);
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

-- A ticket whose credited team changed.
CREATE TYPE tickets.credit_move AS (ticket_id text, team_was text, team_now text);

-- Brings tickets.closure_credit up to date with the closure events of the
-- given tickets (NULL: of every ticket) and moves the counted closures
-- whose credited team changed from the old team's rollup row to the new
-- one's: each ticket's newest event now against the credit the rollup
-- counted, so the order in which one statement's deletes and inserts of
-- events reach their triggers does not matter.
CREATE FUNCTION tickets.sync_closure_credit(p_tickets text[])
RETURNS void LANGUAGE plpgsql SET jit = off SET work_mem = '64MB' SET maintenance_work_mem = '256MB' AS $$
DECLARE
    v_moves tickets.credit_move[];
    v_daily tickets.rollup_delta[];
    v_team tickets.rollup_delta[];
BEGIN
    PERFORM tickets.lock_rollups();
    EXECUTE format($q$
        WITH newest AS MATERIALIZED (
            -- sorted in byte order: equality is the same, the sort several times cheaper
            SELECT DISTINCT ON (e.ticket_id COLLATE "C") e.ticket_id, e.assigned_team
              FROM tickets.closure_events e
             WHERE %1$s
             ORDER BY e.ticket_id COLLATE "C", e.observed_at DESC
        ), counted AS MATERIALIZED (
            SELECT coalesce(n.ticket_id, c.ticket_id) AS ticket_id,
                   c.ticket_id IS NOT NULL AS had, c.assigned_team AS team_was,
                   n.ticket_id IS NOT NULL AS has, n.assigned_team AS team_now
              FROM (SELECT c.ticket_id, c.assigned_team FROM tickets.closure_credit c WHERE %2$s) AS c
              FULL JOIN newest n ON n.ticket_id = c.ticket_id
             WHERE (c.ticket_id IS NOT NULL, c.assigned_team) IS DISTINCT FROM (n.ticket_id IS NOT NULL, n.assigned_team)
        ), forgotten AS (
            DELETE FROM tickets.closure_credit c
             USING counted k WHERE %3$s AND k.ticket_id = c.ticket_id AND NOT k.has
        ), changed AS (
            UPDATE tickets.closure_credit c SET assigned_team = k.team_now
              FROM counted k WHERE %3$s AND k.ticket_id = c.ticket_id AND k.has AND k.had
        ), added AS (
            INSERT INTO tickets.closure_credit (ticket_id, assigned_team)
            SELECT k.ticket_id, k.team_now FROM counted k WHERE %3$s AND k.has AND NOT k.had
        )
        SELECT array_agg(ROW(i.ticket_id,
                             CASE WHEN k.had THEN k.team_was ELSE i.assigned_team END,
                             CASE WHEN k.has THEN k.team_now ELSE i.assigned_team END)::tickets.credit_move)
          FROM counted k
          JOIN tickets.inc i ON i.ticket_id = k.ticket_id
         WHERE i.closed_at IS NOT NULL AND i.is_actionable IS NOT TRUE
           AND nullif(btrim(CASE WHEN k.had THEN k.team_was ELSE i.assigned_team END), '')
               IS DISTINCT FROM nullif(btrim(CASE WHEN k.has THEN k.team_now ELSE i.assigned_team END), '')
        $q$,
        CASE WHEN p_tickets IS NULL THEN 'true' ELSE 'e.ticket_id = ANY ($1)' END,
        CASE WHEN p_tickets IS NULL THEN 'true' ELSE 'c.ticket_id = ANY ($1)' END,
        CASE WHEN p_tickets IS NULL THEN 'false' ELSE 'true' END)  -- every ticket: rewritten below
       INTO v_moves
      USING p_tickets;
    IF p_tickets IS NULL THEN
        -- Every ticket: the table written again whole, its key built after
        -- the rows (a first capture's half a million rows: 1.6 s, not 3-5 s
        -- of one-by-one index inserts).
        TRUNCATE tickets.closure_credit;
        ALTER TABLE tickets.closure_credit DROP CONSTRAINT closure_credit_pkey;
        INSERT INTO tickets.closure_credit (ticket_id, assigned_team)
        SELECT DISTINCT ON (e.ticket_id COLLATE "C") e.ticket_id, e.assigned_team
          FROM tickets.closure_events e
         ORDER BY e.ticket_id COLLATE "C", e.observed_at DESC;
        ALTER TABLE tickets.closure_credit ADD CONSTRAINT closure_credit_pkey PRIMARY KEY (ticket_id);
    END IF;
    IF v_moves IS NULL THEN
        RETURN;
    END IF;
    EXECUTE tickets.rollup_deltas_sql(
        'SELECT s.sign, i.closed_at, i.is_actionable, i.cluster, i.mttr, i.sla_status, '
        '       i.created_at_service, i.first_seen_at, s.team '
        '  FROM unnest($1) AS m '
        '  JOIN tickets.inc i ON i.ticket_id = m.ticket_id '
        ' CROSS JOIN LATERAL (VALUES (-1, m.team_was), (1, m.team_now)) AS s(sign, team)')
       INTO v_daily, v_team
      USING v_moves;
    PERFORM tickets.apply_team_rollup_deltas(v_team);  -- the daily rollup's marks cancel out
END
$$;

CREATE OR REPLACE FUNCTION tickets.trg_closure_events_rollup() RETURNS trigger
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    v_touched text := CASE TG_OP WHEN 'INSERT' THEN 'SELECT n.ticket_id FROM new_rows n'
                                 WHEN 'DELETE' THEN 'SELECT o.ticket_id FROM old_rows o'
                                 WHEN 'UPDATE' THEN 'SELECT o.ticket_id FROM old_rows o '
                                                    'UNION ALL SELECT n.ticket_id FROM new_rows n' END;
    v_tickets text[];
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM tickets.closure_credit;
        PERFORM tickets.refresh_team_rollup(NULL);
        RETURN NULL;
    END IF;
    EXECUTE 'SELECT array_agg(DISTINCT t.ticket_id) FROM (' || v_touched || ') AS t' INTO v_tickets;
    IF v_tickets IS NOT NULL THEN
        PERFORM tickets.sync_closure_credit(v_tickets);
    END IF;
    RETURN NULL;
END
$$;

-- Every rollup recomputed from tickets.inc: what a first load into an empty
-- tickets.inc runs once after it, with the insert trigger switched off
-- for the load (its transition table alone would hold the whole file).
CREATE FUNCTION tickets.rebuild_rollups() RETURNS void
LANGUAGE plpgsql SET jit = off SET work_mem = '64MB' AS $$
BEGIN
    PERFORM tickets.refresh_daily_rollup(NULL);
    PERFORM tickets.refresh_team_rollup(NULL);
    DELETE FROM tickets.inc_open_rollup;
    INSERT INTO tickets.inc_open_rollup (cluster_key, team, clock_day, open)
    SELECT lower(i.cluster), nullif(btrim(i.assigned_team), ''),
           tickets.eat_day(coalesce(i.created_at_service, i.first_seen_at)), count(*)
      FROM tickets.inc i
     WHERE i.is_actionable
     GROUP BY 1, 2, 3;
END
$$;

-- A first capture writes every closure event in one statement, into an
-- empty table whose indexes it drops for the load; it now also switches
-- the events' rollup trigger off for that statement and brings the credits
-- and the team rollup up to date once afterwards, from the table.
CREATE OR REPLACE FUNCTION tickets.first_load_closures(p_at timestamp with time zone)
 RETURNS integer
 LANGUAGE plpgsql
 SET jit TO 'off'
AS $$
DECLARE
    v_added integer;
    v_index record;
    v_rebuild text[] := '{}';
    v_statement text;
BEGIN
    IF EXISTS (SELECT FROM tickets.closure_events) THEN
        DELETE FROM tickets.closure_events e
         WHERE e.observed_at <> p_at
            OR NOT EXISTS (SELECT FROM tickets.inc i
                            WHERE i.ticket_id = e.ticket_id AND i.is_actionable IS FALSE);
        INSERT INTO tickets.closure_events (
            ticket_id, observed_at, closed_at, source_key, first_observation, owner,
            assigned_team, cluster, region, mttr_hours, sla_status)
        SELECT i.ticket_id, p_at, i.closed_at, i.source_key, true, i.owner,
               i.assigned_team, i.cluster, i.region, tickets.to_numeric(i.raw ->> 'mttr'), i.sla_status
          FROM tickets.inc i
         WHERE i.is_actionable IS FALSE
        ON CONFLICT (ticket_id, observed_at) DO NOTHING;
        GET DIAGNOSTICS v_added = ROW_COUNT;
        RETURN v_added;
    END IF;
    FOR v_index IN
        SELECT c.relname AS index_name, k.conname, k.contype,
               CASE WHEN k.contype IN ('p', 'u')
                    THEN format('ALTER TABLE tickets.closure_events ADD CONSTRAINT %I %s',
                                k.conname, pg_get_constraintdef(k.oid))
                    ELSE pg_get_indexdef(i.indexrelid) END AS definition
          FROM pg_index i
          JOIN pg_class c ON c.oid = i.indexrelid
          LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = i.indrelid
         WHERE i.indrelid = 'tickets.closure_events'::regclass
         ORDER BY k.contype NULLS LAST, c.relname
    LOOP
        IF v_index.contype IN ('p', 'u') THEN
            EXECUTE format('ALTER TABLE tickets.closure_events DROP CONSTRAINT %I', v_index.conname);
        ELSIF v_index.contype IS NULL THEN
            EXECUTE format('DROP INDEX tickets.%I', v_index.index_name);
        ELSE
            CONTINUE;  -- an index another kind of constraint owns stays
        END IF;
        v_rebuild := v_rebuild || v_index.definition;
    END LOOP;
    -- The rollup trigger would hold every event in its transition table and
    -- read them all back to compare credits; the credits are brought up to
    -- date once below instead.
    ALTER TABLE tickets.closure_events DISABLE TRIGGER closure_events_rollup_insert;
    -- One row per ticket: no key can repeat.
    INSERT INTO tickets.closure_events (
        ticket_id, observed_at, closed_at, source_key, first_observation, owner,
        assigned_team, cluster, region, mttr_hours, sla_status)
    SELECT i.ticket_id, p_at, i.closed_at, i.source_key, true, i.owner,
           i.assigned_team, i.cluster, i.region, tickets.to_numeric(i.raw ->> 'mttr'), i.sla_status
      FROM tickets.inc i
     WHERE i.is_actionable IS FALSE;
    GET DIAGNOSTICS v_added = ROW_COUNT;
    FOREACH v_statement IN ARRAY v_rebuild LOOP
        EXECUTE v_statement;
    END LOOP;
    ALTER TABLE tickets.closure_events ENABLE TRIGGER closure_events_rollup_insert;
    ANALYZE tickets.closure_events;
    PERFORM tickets.sync_closure_credit(NULL);
    RETURN v_added;
END
$$;

DROP FUNCTION tickets.rollup_days_of(timestamptz, timestamptz, timestamptz);

-- Internal routines: none for PUBLIC.
REVOKE EXECUTE ON FUNCTION tickets.rollup_marks(timestamptz, boolean, text, integer, text, timestamptz, timestamptz)
    FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tickets.mttr_values_of(integer[], bigint[], integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tickets.rollup_deltas_sql(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tickets.mttrs_merged(integer[], integer[], integer[], integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tickets.mttr_histogram_merged(integer[], integer[], integer[], integer[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tickets.apply_daily_rollup_deltas(tickets.rollup_delta[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tickets.apply_team_rollup_deltas(tickets.rollup_delta[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tickets.rollup_rows_sql(integer, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tickets.sync_closure_credit(text[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tickets.rebuild_rollups() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tickets.lock_rollups() FROM PUBLIC;
