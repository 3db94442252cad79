-- The last step of `fleettickets adopt` (fleettickets/adopt.py), not a
-- numbered migration: it runs once, inside the adoption's transaction, after
-- the current schema is built and the deployed rows are copied into it, with
-- the watermark in the temporary table adopt_watermark.
-- Why: the earlier loader kept no versions, so each adopted ticket gets one,
-- valid from the watermark (the last file it applied) and marked
-- `adopted:<key>`; the capture starts after them, so they never count as
-- tickets opened or closed. The days and closures it captured are recorded as
-- kept, and the guard triggers of migration 33 keep them as recorded.

INSERT INTO tickets.inc_versions (ticket_id, valid_from, source_key, raw)
SELECT i.ticket_id, w.watermark_ts, 'adopted:' || w.watermark_key, i.raw
  FROM tickets.inc i, adopt_watermark w;

UPDATE tickets.history_state
   SET captured_version_id = (SELECT coalesce(max(version_id), 0) FROM tickets.inc_versions),
       captured_now = NULL, updated_at = now();

-- The watermark's day too: recomputed, it would count every adopted ticket as opened that day.
INSERT INTO tickets.history_kept_days (snapshot_date)
SELECT snapshot_date FROM tickets.inc_daily_snapshot
 UNION
SELECT tickets.eat_day(watermark_ts) FROM adopt_watermark;

INSERT INTO tickets.adoption (watermark_key, watermark_ts, kept_from, deployed_ledger, plan)
SELECT w.watermark_key, w.watermark_ts,
       least(w.watermark_ts,
             (SELECT min(observed_at) FROM tickets.closure_events),
             (SELECT min(snapshot_date)::timestamp AT TIME ZONE 'Africa/Nairobi'
                FROM tickets.inc_daily_snapshot)),
       w.deployed_ledger, '[]'::jsonb
  FROM adopt_watermark w;

CREATE TRIGGER inc_daily_snapshot_keep_adopted
    BEFORE INSERT OR UPDATE OR DELETE ON tickets.inc_daily_snapshot
    FOR EACH ROW EXECUTE FUNCTION tickets.trg_keep_adopted_snapshot();
CREATE TRIGGER closure_events_keep_adopted
    BEFORE INSERT OR UPDATE OR DELETE ON tickets.closure_events
    FOR EACH ROW EXECUTE FUNCTION tickets.trg_keep_adopted_closures();
