-- 34: the dashboard payload is planned without JIT compilation.
--
-- On the million-ticket bench the plans inside reporting.inc_dashboard_payload
-- cost enough to cross jit_above_cost, so every call paid for compiling its
-- expressions (about 0.3 s of server time on a call that returns one feature
-- per collection) and got nothing back: each statement reads a bounded range
-- once. The history functions (10, 19, 20, 29, 30) and the trends functions
-- (31) are already planned this way for the same reason.
--
-- A per-ticket cache of prebuilt GeoJSON features was measured beside this
-- and not kept: building a feature fell from ~20 us to ~5 us, but fetching
-- each cached feature by ticket_id cost what the building saved, and its
-- upkeep added to every ingest (docs/phase-2-dashboard.md, "Performance").

ALTER FUNCTION reporting.inc_dashboard_payload(text, text, text, date, date, integer, timestamptz)
    SET jit = off;
