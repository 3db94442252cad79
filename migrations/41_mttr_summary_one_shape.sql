-- The mttr summary's JSON (median and p90 rounded to whole minutes, and the
-- number of samples) is written in one place.
--
-- Migration 38 added reporting.mttr_summary_of, which gives the dashboard's
-- mttr_summary over rollup rows, and wrote the object again there. Both
-- now build it with reporting.mttr_summary_json, so the trends and team
-- closures cannot round or name a figure otherwise than the dashboard does.
-- The payloads are unchanged.

CREATE FUNCTION reporting.mttr_summary_json(p_percentiles float8[], p_samples bigint)
RETURNS json LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT json_build_object(
               'median', round(p_percentiles[1]::numeric)::int,
               'p90', round(p_percentiles[2]::numeric)::int,
               'samples', p_samples)
$$;
COMMENT ON FUNCTION reporting.mttr_summary_json(float8[], bigint) IS
    'The mttr_minutes object: the median and p90 (percentile_cont) rounded to whole minutes, and the sample count.';
REVOKE EXECUTE ON FUNCTION reporting.mttr_summary_json(float8[], bigint) FROM PUBLIC;

CREATE OR REPLACE FUNCTION reporting.mttr_summary(p_mttrs integer[])
RETURNS json LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT reporting.mttr_summary_json(
               (SELECT percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY v) FROM unnest(p_mttrs) v),
               coalesce(cardinality(p_mttrs), 0))
$$;

CREATE OR REPLACE FUNCTION reporting.mttr_summary_of(p_parts tickets.mttr_part[])
RETURNS json LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT reporting.mttr_summary_json(
               reporting.mttr_percentiles_of(p_parts),
               (SELECT coalesce(sum(cardinality(p.sorted)), 0) FROM unnest(p_parts) AS p)::bigint)
$$;
