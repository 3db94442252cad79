-- A first capture writes each closed ticket's credit straight from its one
-- closure event, instead of through tickets.sync_closure_credit(NULL).
--
-- On a first load every closed ticket gets exactly one event, copied from
-- tickets.inc in the same statement, and tickets.closure_credit is empty
-- (the events' TRUNCATE trigger empties it with them). sync_closure_credit
-- then sorted all the events to find each ticket's newest, compared them
-- with the empty credit table, joined every one back to tickets.inc to find
-- the team moves there cannot be, and sorted the events a second time to
-- write the table: 4.2 s of an 11 s first capture on the bench's million
-- tickets (462,692 closures). The credits are now one pass over the events,
-- the key built after the rows.
--
-- The team rollup was built from tickets.inc by the load (or emptied of
-- credits with the events), so it counts each closure under the ticket's
-- own team, which is the team its event carries: no closure moves. A
-- credit without an event, which only a hand edit leaves, is dropped with
-- the rest; the general sync moved such a closure out of a team that never
-- counted it and then had to repair the rollup. Nothing else in the
-- function changes.

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
    -- Each ticket's one event is its newest, and its team is the one the
    -- team rollup counts the closure under when it has no event yet (the
    -- ticket's own): the credits are the events' teams and nothing moves.
    -- A credit left without events (only a hand edit leaves one) is dropped.
    TRUNCATE tickets.closure_credit;
    ALTER TABLE tickets.closure_credit DROP CONSTRAINT closure_credit_pkey;
    INSERT INTO tickets.closure_credit (ticket_id, assigned_team)
    SELECT e.ticket_id, e.assigned_team FROM tickets.closure_events e;
    ALTER TABLE tickets.closure_credit ADD CONSTRAINT closure_credit_pkey PRIMARY KEY (ticket_id);
    RETURN v_added;
END
$$;
