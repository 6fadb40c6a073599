-- Every finished event writes one sync_outcome row, and each row paid four index entries. Two
-- of them bought nothing for their cost:
--  * (source, object_type, record_id, at): three text columns and a timestamp, inserted at a
--    random place in the tree for every outcome. No query of dealsync reads it: a record's
--    history (ops_status.c, history_sql) finds the record's events and joins their outcomes by
--    event id (sync_outcome_event_idx), and the status views filter by time.
--  * (at): the status views read the last 24 hours (at > now() - interval '24 hours'). Outcomes
--    are written in time order, so a BRIN index (one summary per range of pages, nothing
--    written per row until the range is summarized) serves that filter.
-- The primary key and the event id index (both bigint, appended near the right edge) stay.
DROP INDEX sync_outcome_record_idx;
DROP INDEX sync_outcome_at_idx;
CREATE INDEX sync_outcome_at_brin ON sync_outcome USING brin (at);
