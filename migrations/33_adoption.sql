-- Adoption of a database the earlier loader set up (`fleettickets adopt`).
-- tickets.adoption records what was taken over: when, the watermark the
-- adopted tickets stand at, the earlier loader's ledger rows, and the span of
-- history that loader captured. That history cannot be recomputed (the loader
-- kept no versions), so inside the span its rows stand as recorded: the two
-- guard functions below, which `adopt` attaches as triggers, skip every
-- insert, update and delete that capture_history() or rebuild_history() would
-- make there. A fresh install has no adoption row and no such triggers, so its
-- captures pay nothing for this.
-- Daily rows the earlier loader wrote may lack figures it never recorded
-- (opened, the first-seen-clock count, open tickets per cluster): those are
-- NULL, "not recorded", never a made-up zero. See docs/operations.md.

CREATE TABLE tickets.adoption (
    singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    adopted_at      timestamptz NOT NULL DEFAULT now(),
    watermark_key   text NOT NULL,
    watermark_ts    timestamptz NOT NULL,
    kept_from       timestamptz NOT NULL,
    deployed_ledger jsonb NOT NULL,
    plan            jsonb NOT NULL
);
COMMENT ON TABLE tickets.adoption IS
    'The takeover of a database set up by the earlier loader; no row on a fresh install.';
COMMENT ON COLUMN tickets.adoption.watermark_ts IS
    'Time of the last change file the earlier loader applied: valid_from of the adopted versions.';
COMMENT ON COLUMN tickets.adoption.kept_from IS
    'Closure events observed from kept_from through watermark_ts are the earlier loader''s and stand as recorded.';
COMMENT ON COLUMN tickets.adoption.deployed_ledger IS
    'The earlier loader''s tickets.schema_migrations rows, as they were.';

-- Days whose row the earlier loader captured (and the watermark's day, whose
-- row would otherwise count every adopted ticket as opened that day).
CREATE TABLE tickets.history_kept_days (
    snapshot_date date PRIMARY KEY
);

ALTER TABLE tickets.inc_daily_snapshot
    ALTER COLUMN open_on_first_seen_clock DROP NOT NULL,
    ALTER COLUMN opened DROP NOT NULL,
    ALTER COLUMN open_by_cluster DROP NOT NULL;

CREATE FUNCTION tickets.trg_keep_adopted_snapshot() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT FROM tickets.history_kept_days k
                WHERE k.snapshot_date = CASE TG_OP WHEN 'DELETE' THEN OLD.snapshot_date
                                                   ELSE NEW.snapshot_date END) THEN
        RETURN NULL;
    END IF;
    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END
$$;

CREATE FUNCTION tickets.trg_keep_adopted_closures() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT FROM tickets.adoption a
                WHERE CASE TG_OP WHEN 'DELETE' THEN OLD.observed_at ELSE NEW.observed_at END
                      BETWEEN a.kept_from AND a.watermark_ts) THEN
        RETURN NULL;
    END IF;
    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END
$$;

-- Internal, like every routine since migration 24: no EXECUTE for PUBLIC.
REVOKE EXECUTE ON FUNCTION tickets.trg_keep_adopted_snapshot() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tickets.trg_keep_adopted_closures() FROM PUBLIC;
