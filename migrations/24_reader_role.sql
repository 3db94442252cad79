-- A least-privilege role for everything that reads: fleettickets_reader
-- (NOLOGIN). The dashboard API, PostgREST or Supabase connect as a login
-- member of it (docs/operations.md, "The reader role") instead of as the
-- owner of the tables.
-- What it may do, and nothing else:
-- - call reporting.fn_tickets_for_map, reporting.fn_inc_dashboard and
--   reporting.fn_dispatch_candidates. They read the base tables, so they run
--   SECURITY DEFINER with a pinned search_path (pg_catalog, the PostGIS
--   schema, pg_temp last) and every table they name is schema-qualified;
-- - read tickets.inc_open_sla and tickets.inc_daily_snapshot, for the
--   documented queries. The view used to call tickets.inc_open_sla_at(now());
--   a view reads its tables with its owner's rights but calls functions with
--   the caller's, so the function (and through it tickets.inc) would have to
--   be open to the reader. It is re-created here with the same body inline:
--   same columns, same rule (the tests check the view against the function),
--   and a KNN or radius filter on geog still reaches the GiST indexes.
-- EXECUTE is revoked from PUBLIC on every routine in tickets and reporting;
-- a later migration that adds a function revokes it too (a test checks).
-- Guard rails:
-- - statement_timeout 5s on the role. PostgreSQL applies a role's settings
--   at login only, to the login role itself, so each login member carries
--   it as well (the documented CREATE ROLE does; `status` lists members
--   without one). PostgREST applies the settings of the role it switches to.
-- - a ceiling of 10,000 features per collection on fn_inc_dashboard for any
--   caller who may not read tickets.inc itself: a larger p_max_features is
--   lowered to it and NULL no longer means every feature. The payload's
--   filters.max_features says which cap was in force. The former body
--   becomes reporting.inc_dashboard_payload, which only the owner may call.
-- Roles are cluster-wide. tickets.setup_reader_role() creates the role when
-- it is missing and the migrating user may create roles (otherwise it says
-- so and the migration still applies; `status` shows how to finish), then
-- grants exactly the list above. It is idempotent: run it again after a
-- superuser creates the role.

CREATE OR REPLACE VIEW tickets.inc_open_sla AS
    SELECT i.ticket_id, i.normalized_status, i.cluster, i.region, i.location_name,
           i.assigned_team, i.owner, i.created_at_service, i.first_seen_at,
           CASE WHEN i.created_at_service IS NOT NULL THEN 'created_at_service'
                WHEN i.first_seen_at IS NOT NULL THEN 'first_seen_at' END AS sla_clock_source,
           c.clock_at AS sla_clock_at,
           c.clock_at + interval '48 hours' AS sla_due_at,
           round(extract(epoch FROM now() - c.clock_at) / 3600, 2) AS hours_open,
           CASE WHEN c.clock_at IS NULL THEN 'unknown'
                WHEN now() - c.clock_at > interval '48 hours' THEN 'breached'
                WHEN now() - c.clock_at >= interval '36 hours' THEN 'at_risk'
                ELSE 'within' END AS sla_state,
           i.latitude, i.longitude, i.geo_source,
           i.geog::geography AS geog  -- the type the view always had: no typmod
      FROM tickets.inc i
     CROSS JOIN LATERAL (SELECT coalesce(i.created_at_service, i.first_seen_at) AS clock_at) c
     WHERE i.is_actionable;

ALTER FUNCTION reporting.fn_inc_dashboard(text, text, text, date, date, integer, timestamptz)
    RENAME TO inc_dashboard_payload;
COMMENT ON FUNCTION reporting.inc_dashboard_payload(text, text, text, date, date, integer, timestamptz) IS
    'The dashboard payload without the reader''s feature ceiling; called by reporting.fn_inc_dashboard.';

-- True when whoever called the SECURITY DEFINER function may read tickets.inc
-- itself. Inside such a function current_user is the owner; the caller is
-- the role set with SET ROLE (as PostgREST does), else the session's login.
CREATE FUNCTION reporting.caller_reads_tickets() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT has_table_privilege(coalesce(nullif(current_setting('role'), 'none'), session_user),
                               'tickets.inc', 'SELECT')
$$;

CREATE FUNCTION reporting.fn_inc_dashboard(
    p_cluster text DEFAULT NULL,
    p_status  text DEFAULT NULL,
    p_window  text DEFAULT 'today',
    p_from    date DEFAULT NULL,
    p_to      date DEFAULT NULL,
    p_max_features integer DEFAULT 10000,
    p_now     timestamptz DEFAULT now())
RETURNS json
LANGUAGE plpgsql STABLE AS $$
DECLARE
    reader_ceiling CONSTANT integer := 10000;
BEGIN
    IF NOT reporting.caller_reads_tickets() THEN
        p_max_features := least(coalesce(p_max_features, reader_ceiling), reader_ceiling);
    END IF;
    RETURN reporting.inc_dashboard_payload(p_cluster, p_status, p_window, p_from, p_to,
                                           p_max_features, p_now);
END
$$;
COMMENT ON FUNCTION reporting.fn_inc_dashboard(text, text, text, date, date, integer, timestamptz) IS
    'Dashboard payload (json): window, filters, freshness, metrics, engineers, open and closed GeoJSON. See docs/dashboard-api-contract.md.';

-- The entry points run as their owner, with a search_path no caller can
-- change: PostGIS is found where it is installed, temporary objects never.
DO $$
DECLARE
    v_path text := format('pg_catalog, %I, pg_temp',
                          (SELECT n.nspname FROM pg_extension e
                             JOIN pg_namespace n ON n.oid = e.extnamespace
                            WHERE e.extname = 'postgis'));
BEGIN
    EXECUTE format('ALTER FUNCTION reporting.fn_tickets_for_map(boolean) SECURITY DEFINER SET search_path = %s', v_path);
    EXECUTE format('ALTER FUNCTION reporting.fn_inc_dashboard(text, text, text, date, date, integer, timestamptz) '
                   'SECURITY DEFINER SET search_path = %s', v_path);
    EXECUTE format('ALTER FUNCTION reporting.fn_dispatch_candidates(float8, float8, int, int, text, text, text, timestamptz) '
                   'SECURITY DEFINER SET search_path = %s', v_path);
END
$$;

-- Creates p_role (NOLOGIN) when it is missing and this user may, sets its
-- statement_timeout when this user may, and grants it exactly the entry
-- points and the two readable relations. Returns 'created', 'granted'
-- (it existed) or 'missing' (it could not be created; a NOTICE says how).
CREATE FUNCTION tickets.setup_reader_role(p_role name DEFAULT 'fleettickets_reader')
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_result text := 'granted';
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = p_role) THEN
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', p_role);
            v_result := 'created';
        EXCEPTION
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'role % is missing and % may not create roles', p_role, current_user
                    USING HINT = format('As a superuser: CREATE ROLE %I NOLOGIN; then as %I: SELECT tickets.setup_reader_role(%L);',
                                        p_role, current_user, p_role);
                RETURN 'missing';
            WHEN duplicate_object THEN
                NULL;  -- created meanwhile by a migration of another database on this cluster
        END;
    END IF;
    BEGIN
        EXECUTE format('ALTER ROLE %I SET statement_timeout = %L', p_role, '5s');
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE NOTICE '% may not set the statement_timeout of role %', current_user, p_role
            USING HINT = format('As a superuser: ALTER ROLE %I SET statement_timeout = ''5s'';', p_role);
    END;
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA tickets, reporting FROM %I', p_role);
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA tickets, reporting FROM %I', p_role);
    EXECUTE format('REVOKE ALL ON ALL ROUTINES IN SCHEMA tickets, reporting FROM %I', p_role);
    EXECUTE format('GRANT USAGE ON SCHEMA tickets, reporting TO %I', p_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION reporting.fn_tickets_for_map(boolean), '
                   'reporting.fn_inc_dashboard(text, text, text, date, date, integer, timestamptz), '
                   'reporting.fn_dispatch_candidates(float8, float8, int, int, text, text, text, timestamptz) TO %I',
                   p_role);
    EXECUTE format('GRANT SELECT ON tickets.inc_open_sla, tickets.inc_daily_snapshot TO %I', p_role);
    RETURN v_result;
END
$$;

REVOKE EXECUTE ON ALL ROUTINES IN SCHEMA tickets, reporting FROM PUBLIC;

SELECT tickets.setup_reader_role();
