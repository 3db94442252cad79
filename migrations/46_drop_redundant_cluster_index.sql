-- Drops inc_cluster_idx, the index on lower(cluster) alone that migration 03
-- created.
--
-- inc_cluster_closed_at_idx (09) leads with the same expression, so every
-- lookup by cluster that the older index served, it serves too; the read
-- functions' filters on cluster alone run on open tickets, where the
-- partial indexes keyed on lower(cluster) answer them. The older index
-- only cost writes: one more index entry for every ticket a load inserts or
-- updates, and 1.3 s of the first baseline's index builds on the bench's
-- million tickets.

DROP INDEX tickets.inc_cluster_idx;
