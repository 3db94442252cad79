-- The capture of a delta deletes the touched tickets' closure events that
-- their versions no longer give, by primary key. tickets.derive_closures
-- found them with `ticket_id IN (touched)`, which the planner ran as a hash
-- join over every closure event: at 1,000,000 tickets a 20,000-row delta's
-- capture read all 462,692 events (0.3-0.6 s) to delete none. `= ANY` of
-- the touched keys makes it an index scan of closure_events_pkey whatever
-- the planner guesses of the touched set. Nothing else changes: the same
-- rows are deleted and inserted.

CREATE OR REPLACE FUNCTION tickets.derive_closures(p_after_version_id bigint, p_upto_version_id bigint)
 RETURNS integer
 LANGUAGE sql
 SET jit TO 'off'
AS $function$
    WITH touched AS MATERIALIZED (
        SELECT DISTINCT ticket_id FROM tickets.inc_versions
         WHERE version_id > p_after_version_id AND version_id <= p_upto_version_id
    ), scope AS (
        -- Every version on a first capture, else the touched tickets' versions by key.
        SELECT v.ticket_id, v.valid_from, tickets.to_bool(v.raw ->> 'is_actionable') IS FALSE AS closed
          FROM tickets.inc_versions v
         WHERE p_after_version_id = 0
        UNION ALL
        SELECT v.ticket_id, v.valid_from, tickets.to_bool(v.raw ->> 'is_actionable') IS FALSE
          FROM touched t JOIN tickets.inc_versions v ON v.ticket_id = t.ticket_id
         WHERE p_after_version_id <> 0
    ), seq AS (
        SELECT ticket_id, valid_from, closed,
               lag(closed) OVER (PARTITION BY ticket_id ORDER BY valid_from) AS was_closed
          FROM scope
    ), events AS MATERIALIZED (
        -- Fetched by key, one closure at a time: the planner cannot tell a
        -- few hundred closures from half a million and would hash every version.
        SELECT s.ticket_id, s.valid_from, s.was_closed, v.source_key, v.raw
          FROM seq s
         CROSS JOIN LATERAL (
               SELECT p.source_key, p.raw FROM tickets.inc_versions p
                WHERE p.ticket_id = s.ticket_id AND p.valid_from = s.valid_from
                LIMIT 1) AS v  -- the key is unique; LIMIT keeps this a lookup
         WHERE s.closed AND s.was_closed IS NOT TRUE
    ), dropped_any AS (
        -- Two deletes, one of which the parameter switches off: on a first
        -- capture a scan, else the touched tickets' events by key.
        DELETE FROM tickets.closure_events e
         WHERE p_after_version_id = 0
           AND NOT EXISTS (SELECT 1 FROM events n
                            WHERE n.ticket_id = e.ticket_id AND n.valid_from = e.observed_at)
    ), dropped_touched AS (
        -- By key: as a join the planner hashed the touched tickets and read
        -- every closure event (462,692 at 1,000,000 tickets) to find theirs.
        DELETE FROM tickets.closure_events e
         WHERE p_after_version_id <> 0
           AND e.ticket_id = ANY ((SELECT array_agg(ticket_id) FROM touched)::text[])
           AND NOT EXISTS (SELECT 1 FROM events n
                            WHERE n.ticket_id = e.ticket_id AND n.valid_from = e.observed_at)
    ), added AS (
        INSERT INTO tickets.closure_events (
            ticket_id, observed_at, closed_at, source_key, first_observation, owner,
            assigned_team, cluster, region, mttr_hours, sla_status)
        SELECT ticket_id, valid_from, tickets.eat_ts(raw ->> 'closed_at'), source_key,
               was_closed IS NULL,
               tickets.clean_text(raw ->> 'owner'),
               tickets.clean_text(raw ->> 'assigned_team'),
               tickets.clean_text(raw ->> 'cluster'),
               lower(tickets.clean_text(raw ->> 'region')),
               tickets.to_numeric(raw ->> 'mttr'),
               tickets.clean_text(raw ->> 'sla_status')
          FROM events
        ON CONFLICT (ticket_id, observed_at) DO NOTHING
        RETURNING 1
    )
    SELECT count(*)::integer FROM added
$function$;

REVOKE EXECUTE ON FUNCTION tickets.derive_closures(bigint, bigint) FROM PUBLIC;
