-- Drop tickets.inc.service_type: the feed sends `inc` on every row of this
-- table, so the column only cost space in every row. The value stays in raw.

ALTER TABLE tickets.inc DROP COLUMN service_type;
