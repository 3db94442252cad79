-- tickets.inc_open_sla: every open (is_actionable) ticket with its SLA clock,
-- hours open and state against the 48-hour contract, plus what dispatch needs
-- (team, owner, cluster, region, geog).
-- The clock is created_at_service, or first_seen_at where that is blank (about
-- 30% of rows), and the view says which one it used; with neither the state is
-- `unknown`. States: `within` under 36 h, `at_risk` from 36 h up to and
-- including 48 h, `breached` past 48 h.
-- hours_open depends on the current time, so it cannot be a generated column.
-- The rule lives in tickets.inc_open_sla_at(p_now), which the view calls with
-- now() and the dashboard function with its own instant; the planner inlines
-- it, so filters on the view still reach the indexes.

CREATE FUNCTION tickets.inc_open_sla_at(p_now timestamptz)
RETURNS TABLE (
    ticket_id          text,
    normalized_status  text,
    cluster            text,
    region             text,
    location_name      text,
    assigned_team      text,
    owner              text,
    created_at_service timestamptz,
    first_seen_at      timestamptz,
    sla_clock_source   text,
    sla_clock_at       timestamptz,
    sla_due_at         timestamptz,
    hours_open         numeric,
    sla_state          text,
    latitude           double precision,
    longitude          double precision,
    geo_source         text,
    geog               geography
)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT i.ticket_id, i.normalized_status, i.cluster, i.region, i.location_name,
           i.assigned_team, i.owner, i.created_at_service, i.first_seen_at,
           CASE WHEN i.created_at_service IS NOT NULL THEN 'created_at_service'
                WHEN i.first_seen_at IS NOT NULL THEN 'first_seen_at' END,
           c.clock_at,
           c.clock_at + interval '48 hours',
           round(extract(epoch FROM p_now - c.clock_at) / 3600, 2),
           CASE WHEN c.clock_at IS NULL THEN 'unknown'
                WHEN p_now - c.clock_at > interval '48 hours' THEN 'breached'
                WHEN p_now - c.clock_at >= interval '36 hours' THEN 'at_risk'
                ELSE 'within' END,
           i.latitude, i.longitude, i.geo_source, i.geog
      FROM tickets.inc i
     CROSS JOIN LATERAL (SELECT coalesce(i.created_at_service, i.first_seen_at) AS clock_at) c
     WHERE i.is_actionable
$$;
COMMENT ON FUNCTION tickets.inc_open_sla_at(timestamptz) IS
    'Open INC tickets with SLA clock, hours open and 48 h contract state as of p_now.';

CREATE VIEW tickets.inc_open_sla AS
    SELECT * FROM tickets.inc_open_sla_at(now());
COMMENT ON VIEW tickets.inc_open_sla IS
    'Open INC tickets against the 48 h contract as of now(): within < 36 h <= at_risk <= 48 h < breached; unknown without a clock.';
