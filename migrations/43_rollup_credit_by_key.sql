-- The tickets.inc rollup triggers look up a changed row's credited team in
-- tickets.closure_credit by key, one probe per row, instead of joining the
-- whole table.
--
-- Migration 42's triggers joined the statement's transition tables to
-- closure_credit. The planner cannot count a transition table's rows (it
-- guesses thousands), so it hashed all of closure_credit: on a million
-- tickets 462,692 rows and ~350 ms of every run whose delta changed a
-- counted column, whether the delta held 2,000 rows or 20,000. A lateral
-- subquery with LIMIT 1 is always a probe of closure_credit_pkey; a
-- statement of n rows pays n probes (~20,000 a tenth of a second).
--
-- What the rows count for, and so the rollups and every payload, are
-- unchanged: the probe finds the same credit row the join did, and "no
-- credit row" is told apart from "a credit row with no team" by `found`.

CREATE OR REPLACE FUNCTION tickets.rollup_rows_sql(p_sign integer, p_table text, p_alias text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT format('SELECT %1$s, %2$s.closed_at, %2$s.is_actionable, %2$s.cluster, %2$s.mttr, %2$s.sla_status, '
                  '%2$s.created_at_service, %2$s.first_seen_at, '
                  'CASE WHEN c.found THEN c.assigned_team ELSE %2$s.assigned_team END '
                  'FROM %3$s LEFT JOIN LATERAL (SELECT true AS found, k.assigned_team '
                  'FROM tickets.closure_credit k WHERE k.ticket_id = %2$s.ticket_id LIMIT 1) AS c ON true',
                  p_sign, p_alias, p_table)
$$;

-- As in 42, but the credit probed by key.
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
          LEFT JOIN LATERAL (
                SELECT true AS found, k.assigned_team FROM tickets.closure_credit k
                 WHERE k.ticket_id = coalesce(n.ticket_id, o.ticket_id)
                 LIMIT 1) AS c ON true
         CROSS JOIN LATERAL (
               VALUES (-1, o.ticket_id IS NOT NULL, o.closed_at, o.is_actionable, o.cluster, o.mttr, o.sla_status,
                       o.created_at_service, o.first_seen_at,
                       CASE WHEN c.found THEN c.assigned_team ELSE o.assigned_team END),
                      (1, n.ticket_id IS NOT NULL, n.closed_at, n.is_actionable, n.cluster, n.mttr, n.sla_status,
                       n.created_at_service, n.first_seen_at,
                       CASE WHEN c.found THEN c.assigned_team ELSE n.assigned_team END))
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

REVOKE EXECUTE ON FUNCTION tickets.rollup_rows_sql(integer, text, text) FROM PUBLIC;
