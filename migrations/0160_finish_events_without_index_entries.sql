-- A finished event is written without a new index entry (a HOT update). The finish changes an
-- event's status, attempts, error and times, and three indexes named one of those columns: the
-- open events (WHERE status IN ('pending', 'running')), the finished ones (finished_at, WHERE
-- status = 'done') and the dead letters (error_code, id, WHERE status = 'dead'). PostgreSQL
-- writes an update without touching any index only when no indexed column (a partial index's
-- condition included) changes and the new row fits in its page; otherwise every index gets an
-- entry for the new row: the primary key, the UNIQUE (source, dedup_key) index with its
-- uniqueness check, and the finished-at index. That was 3 of the 14.4 WAL records, and 313 of the
-- 1,268 bytes, of each drained event, in the queue's busiest statement.
--  * The record's events: one index on the same columns without the condition, so it names no
--    column a finish changes. Every reader of a record's open events finds them through it (the
--    claim, the live-only claim, the Salesforce echo checks) and checks the status on the row: a
--    record's done events are read too until they are pruned (QUEUE_DONE_RETENTION_HOURS), a few
--    rows for a record changed a few times a day.
--  * The finished-at index bounded two readers. The Salesforce echo check (sync_echo_sf.c) now
--    reads the opportunity's messages through the record index instead, the tighter bound; the
--    prune of done events (worker 0, every 10 minutes) reads the whole table: 88 ms for 200,000
--    events finished over a week, 27,000 of them deleted (EXPLAIN ANALYZE, rolled back).
--  * The dead-letter index: the dead letters of `/admin` and `dealsync status` read the table
--    already (a plan with a sort of every dead event by time), and a requeue by kind reads it once
--    per operator's command.
-- The table keeps half of each page free (fillfactor 50) so that an event's finished row fits
-- beside it: at 70, 62 % of the finishes of a 5,000-event drain found room; at 50, 96 %. Pages
-- written before this keep their fill, and their events are finished as before until pruned.
-- bench/queue_cost.sh (5,000 events, four alternated pairs): 14.42 -> 10.92 WAL records and
-- 1,268 -> 956 bytes per drained event, backend CPU 167 -> 152 us.
CREATE INDEX sync_event_record_idx ON sync_event (source, object_type, record_id, occurred_at, id);
DROP INDEX sync_event_open_idx;
DROP INDEX sync_event_finished_idx;
DROP INDEX sync_event_dead_idx;
ALTER TABLE sync_event SET (fillfactor = 50);
