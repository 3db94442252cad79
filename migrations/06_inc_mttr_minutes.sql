-- mttr becomes whole minutes (integer), which is what the dashboard shows and
-- aggregates; the source sends decimal hours, still kept in raw. A value that
-- cannot be a repair time (negative, or above ten years) reads as NULL rather
-- than failing the insert or overflowing the integer.
-- is_alarm, is_auto_created and is_auto_closed are dropped: alarms are
-- filtered out at ingest and the other two carry a single value in the feed,
-- so the columns said nothing; the values stay in raw.

CREATE FUNCTION tickets.hours_to_minutes(p text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN h >= 0 AND h <= 87600 THEN round(h * 60)::integer END
      FROM (SELECT tickets.to_numeric(p) AS h) AS v
$$;
COMMENT ON FUNCTION tickets.hours_to_minutes(text) IS
    'Decimal hours text to whole minutes; NULL for blanks, debris, negatives and more than ten years.';

ALTER TABLE tickets.inc
    DROP COLUMN mttr,
    DROP COLUMN is_alarm,
    DROP COLUMN is_auto_created,
    DROP COLUMN is_auto_closed,
    ADD COLUMN mttr integer GENERATED ALWAYS AS (tickets.hours_to_minutes(raw ->> 'mttr')) STORED;
COMMENT ON COLUMN tickets.inc.mttr IS
    'Time to repair as the source gives it, in whole minutes (source: decimal hours in raw.mttr).';
