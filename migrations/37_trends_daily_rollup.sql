-- Trends read a per-day rollup instead of recounting every ticket of the
-- range on each call (a year by week cost ~1.7 s at 1M tickets).
--
-- tickets.inc_daily_rollup: one row per EAT day and lower(cluster) (NULL
-- for tickets without a cluster) with the tickets created that day, the
-- closures of that day, their mttr values (kept whole, so a period's median
-- and p90 stay exact) and their SLA and 48-hour counts. A day's rows are
-- computed by tickets.refresh_daily_rollup over that single day's custom
-- window, with the dashboard's own rule functions (inc_window,
-- inc_closed_between, inc_created_between, closure_sla,
-- closure_contract_48h), so a period of whole days is the sum of its days.
--
-- It is kept exact by statement triggers on tickets.inc rather than by the
-- history capture: every write path (ingest, adoption, a capture that is
-- switched off, a hand edit) changes tickets.inc, and the transition tables
-- give both the old and the new created and closed days of every changed
-- ticket. Only rows whose counted columns changed mark their days; each
-- marked day is recomputed in full, in the writing transaction. The
-- rollup depends on tickets.inc alone, so `history rebuild` leaves it
-- exact; tickets.refresh_daily_rollup(NULL) recomputes every day.
--
-- reporting.fn_inc_trends sums the rollup over each period's days (its
-- periods are whole EAT days of custom windows, independent of p_now); the
-- backlog still comes from inc_daily_snapshot. Its payload is unchanged.
-- fn_team_closures still reads tickets.inc and closure_events.
--
-- The migration backfills every day that has a ticket.

CREATE TABLE tickets.inc_daily_rollup (
    day          date NOT NULL,
    cluster_key  text,
    created      bigint NOT NULL,
    closed       bigint NOT NULL,
    mttrs        integer[],
    compliant    bigint NOT NULL,
    breached     bigint NOT NULL,
    c48_within   bigint NOT NULL,
    c48_breached bigint NOT NULL
);
CREATE UNIQUE INDEX inc_daily_rollup_day_cluster_idx
    ON tickets.inc_daily_rollup (day, cluster_key) NULLS NOT DISTINCT;
COMMENT ON TABLE tickets.inc_daily_rollup IS
    'Per EAT day and lower(cluster): tickets created, closures with their mttr values, SLA and 48-hour counts, as the dashboard counts a one-day custom window. Kept by triggers on tickets.inc; read by fn_inc_trends.';
COMMENT ON COLUMN tickets.inc_daily_rollup.cluster_key IS 'lower(cluster); NULL for tickets without a cluster.';
COMMENT ON COLUMN tickets.inc_daily_rollup.mttrs IS 'The mttr (minutes) of each closure of the day that has one; NULL when none.';

-- Recomputes the rollup rows of the given days (every day with a ticket when
-- p_days is NULL); returns how many rows it wrote. A few days scattered over
-- a long span are read one day's window each (index ranges); days that fill
-- most of their span are read in one pass over the span, grouped by EAT
-- day: a first load into an empty tickets.inc fires this before its
-- indexes are rebuilt, where one window per day would scan the table once
-- per day.
CREATE FUNCTION tickets.refresh_daily_rollup(p_days date[])
RETURNS integer LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    v_days date[] := p_days;
    v_span record;
    v_rows integer;
BEGIN
    IF v_days IS NULL THEN
        DELETE FROM tickets.inc_daily_rollup;
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
        INSERT INTO tickets.inc_daily_rollup
        SELECT x.day, x.cluster_key, sum(x.created), sum(x.closed), min(x.mttrs),
               sum(x.compliant), sum(x.breached), sum(x.c48_within), sum(x.c48_breached)
          FROM (
               SELECT tickets.eat_day(i.closed_at) AS day, lower(i.cluster) AS cluster_key, 0 AS created,
                      count(*) AS closed,
                      array_agg(i.mttr) FILTER (WHERE i.mttr IS NOT NULL) AS mttrs,
                      count(*) FILTER (WHERE reporting.closure_sla(i.sla_status) = 'compliant') AS compliant,
                      count(*) FILTER (WHERE reporting.closure_sla(i.sla_status) = 'breached') AS breached,
                      count(*) FILTER (WHERE reporting.closure_contract_48h(i.closed_at, i.created_at_service,
                                                                            i.first_seen_at) = 'within') AS c48_within,
                      count(*) FILTER (WHERE reporting.closure_contract_48h(i.closed_at, i.created_at_service,
                                                                            i.first_seen_at) = 'breached') AS c48_breached
                 FROM reporting.inc_closed_between(v_span.from_ts, v_span.to_ts, NULL, NULL) i
                GROUP BY 1, 2
               UNION ALL
               SELECT tickets.eat_day(coalesce(i.created_at_service, i.first_seen_at)), lower(i.cluster),
                      count(*), 0, NULL, 0, 0, 0, 0
                 FROM reporting.inc_created_between(v_span.from_ts, v_span.to_ts, NULL, NULL) i
                GROUP BY 1, 2) AS x
         WHERE x.day = ANY (v_days)
         GROUP BY x.day, x.cluster_key;
    ELSE
        INSERT INTO tickets.inc_daily_rollup
        SELECT w.from_date, x.cluster_key, sum(x.created), sum(x.closed), min(x.mttrs),
               sum(x.compliant), sum(x.breached), sum(x.c48_within), sum(x.c48_breached)
          FROM unnest(v_days) AS days(d)
         CROSS JOIN LATERAL reporting.inc_window('custom', days.d, days.d, now()) AS w
         CROSS JOIN LATERAL (
               SELECT lower(i.cluster) AS cluster_key, 0 AS created, count(*) AS closed,
                      array_agg(i.mttr) FILTER (WHERE i.mttr IS NOT NULL) AS mttrs,
                      count(*) FILTER (WHERE reporting.closure_sla(i.sla_status) = 'compliant') AS compliant,
                      count(*) FILTER (WHERE reporting.closure_sla(i.sla_status) = 'breached') AS breached,
                      count(*) FILTER (WHERE reporting.closure_contract_48h(i.closed_at, i.created_at_service,
                                                                            i.first_seen_at) = 'within') AS c48_within,
                      count(*) FILTER (WHERE reporting.closure_contract_48h(i.closed_at, i.created_at_service,
                                                                            i.first_seen_at) = 'breached') AS c48_breached
                 FROM reporting.inc_closed_between(w.from_ts, w.to_ts, NULL, NULL) i
                GROUP BY 1
               UNION ALL
               SELECT lower(i.cluster), count(*), 0, NULL, 0, 0, 0, 0
                 FROM reporting.inc_created_between(w.from_ts, w.to_ts, NULL, NULL) i
                GROUP BY 1) AS x
         GROUP BY w.from_date, x.cluster_key;
    END IF;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_rows;
END
$$;

-- The days a set of ticket rows is counted on: created and closed.
CREATE FUNCTION tickets.rollup_days_of(p_created timestamptz, p_first_seen timestamptz, p_closed timestamptz)
RETURNS date[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ARRAY[tickets.eat_day(coalesce(p_created, p_first_seen)), tickets.eat_day(p_closed)]
$$;

CREATE FUNCTION tickets.trg_inc_rollup_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tickets.refresh_daily_rollup(ARRAY(
        SELECT DISTINCT d FROM new_rows n,
               unnest(tickets.rollup_days_of(n.created_at_service, n.first_seen_at, n.closed_at)) AS d
         WHERE d IS NOT NULL));
    RETURN NULL;
END
$$;

CREATE FUNCTION tickets.trg_inc_rollup_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tickets.refresh_daily_rollup(ARRAY(
        SELECT DISTINCT d FROM old_rows o,
               unnest(tickets.rollup_days_of(o.created_at_service, o.first_seen_at, o.closed_at)) AS d
         WHERE d IS NOT NULL));
    RETURN NULL;
END
$$;

-- An update marks, for each row, the old and new created days when what a
-- creation is counted by changed, and the old and new closed days when what
-- a closure is counted by changed; other columns (geometry, last_seen_at,
-- ...) leave the rollup alone. A delta that closes tickets opened weeks ago
-- so recomputes the closing days only, not every day they were opened on.
CREATE FUNCTION tickets.trg_inc_rollup_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_days date[];
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
    IF v_days IS NOT NULL THEN
        PERFORM tickets.refresh_daily_rollup(v_days);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER inc_rollup_insert AFTER INSERT ON tickets.inc
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tickets.trg_inc_rollup_insert();
CREATE TRIGGER inc_rollup_update AFTER UPDATE ON tickets.inc
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tickets.trg_inc_rollup_update();
CREATE TRIGGER inc_rollup_delete AFTER DELETE ON tickets.inc
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tickets.trg_inc_rollup_delete();
-- TRUNCATE has no transition table: it empties the rollup with the tickets.
CREATE FUNCTION tickets.trg_inc_rollup_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM tickets.inc_daily_rollup;
    RETURN NULL;
END
$$;
CREATE TRIGGER inc_rollup_truncate AFTER TRUNCATE ON tickets.inc
    FOR EACH STATEMENT EXECUTE FUNCTION tickets.trg_inc_rollup_truncate();

SELECT tickets.refresh_daily_rollup(NULL);
ANALYZE tickets.inc_daily_rollup;

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
        SELECT p.period_start, p.period_end, c.created, c.closed, m.mttrs, c.compliant, c.breached,
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
                      coalesce(sum(r.c48_breached), 0)::bigint AS c48_breached
                 FROM tickets.inc_daily_rollup r
                WHERE r.day BETWEEN p.period_start AND p.period_end
                  AND (v_cluster IS NULL OR r.cluster_key = v_cluster)) c
         CROSS JOIN LATERAL (
               SELECT array_agg(v) AS mttrs
                 FROM tickets.inc_daily_rollup r, unnest(r.mttrs) AS v
                WHERE r.day BETWEEN p.period_start AND p.period_end
                  AND (v_cluster IS NULL OR r.cluster_key = v_cluster)) m
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
                       'mttr_minutes', reporting.mttr_summary(s.mttrs),
                       'sla_compliance', reporting.sla_summary(s.closed, s.compliant, s.breached),
                       'contract_48h', reporting.contract_48h_summary(s.closed, s.c48_within, s.c48_breached))
                   ORDER BY s.period_start)
              FROM series s), '[]'::json))
      INTO payload;
    RETURN payload;
END
$$;


DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION reporting.fn_inc_trends(date, date, text, text, timestamptz) '
                   'SET search_path = pg_catalog, %I, pg_temp',
                   (SELECT n.nspname FROM pg_extension e
                      JOIN pg_namespace n ON n.oid = e.extnamespace
                     WHERE e.extname = 'postgis'));
END
$$;

-- Internal routines and an entry point granted by setup_reader_role: none for PUBLIC.
REVOKE EXECUTE ON FUNCTION tickets.refresh_daily_rollup(date[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tickets.rollup_days_of(timestamptz, timestamptz, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tickets.trg_inc_rollup_insert() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tickets.trg_inc_rollup_update() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tickets.trg_inc_rollup_delete() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tickets.trg_inc_rollup_truncate() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION reporting.fn_inc_trends(date, date, text, text, timestamptz) FROM PUBLIC;
