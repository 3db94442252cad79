-- A plausible 10_inc_history_capture.sql of the earlier loader, written from
-- its documentation (the real DDL is not available): closures observed by
-- each capture and one backlog row per EAT day. Columns beyond the documented
-- ones (captured_run, open_unmapped) stand for what adoption cannot know.

CREATE TABLE tickets.closure_events (
    id            bigserial PRIMARY KEY,
    ticket_id     text NOT NULL,
    closed_at     timestamptz,
    observed_at   timestamptz NOT NULL DEFAULT now(),
    owner         text,
    assigned_team text,
    cluster       text,
    region        text,
    mttr_hours    numeric,
    sla_status    text,
    captured_run  text
);
CREATE UNIQUE INDEX closure_events_ticket_closed ON tickets.closure_events (ticket_id, closed_at);

CREATE TABLE tickets.inc_daily_snapshot (
    snapshot_date date PRIMARY KEY,
    open_total    integer NOT NULL,
    open_breached integer NOT NULL,
    closed_today  integer NOT NULL,
    open_unmapped integer,
    captured_at   timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION tickets.capture_history() RETURNS void LANGUAGE sql AS $$
    INSERT INTO tickets.closure_events (ticket_id, closed_at, owner, assigned_team, cluster, region, sla_status)
    SELECT ticket_id, closed_at, owner, assigned_team, cluster, region, sla_status
      FROM tickets.inc WHERE NOT is_actionable
    ON CONFLICT DO NOTHING;
    INSERT INTO tickets.inc_daily_snapshot (snapshot_date, open_total, open_breached, closed_today, open_unmapped)
    SELECT (now() AT TIME ZONE 'Africa/Nairobi')::date,
           count(*) FILTER (WHERE is_actionable),
           count(*) FILTER (WHERE is_actionable AND sla_status = 'Breached'),
           (SELECT count(*) FROM tickets.closure_events
             WHERE (observed_at AT TIME ZONE 'Africa/Nairobi')::date = (now() AT TIME ZONE 'Africa/Nairobi')::date),
           count(*) FILTER (WHERE is_actionable AND geom IS NULL)
      FROM tickets.inc
    ON CONFLICT (snapshot_date) DO UPDATE
       SET open_total = EXCLUDED.open_total, open_breached = EXCLUDED.open_breached,
           closed_today = EXCLUDED.closed_today, open_unmapped = EXCLUDED.open_unmapped,
           captured_at = now();
$$;
