-- The operator's view (issue 11): the kind of error behind a retry or a dead letter (the name of
-- dealsync's error, e.g. RATE_LIMIT, INVALID, CONFIG), so that the status page and
-- `dealsync status` group errors by type with the records they affect. NULL when none.
ALTER TABLE sync_outcome ADD COLUMN error_code text;
ALTER TABLE sync_event ADD COLUMN error_code text;
CREATE INDEX sync_outcome_at_idx ON sync_outcome (at);
CREATE INDEX sync_event_dead_idx ON sync_event (error_code, id) WHERE status = 'dead';
