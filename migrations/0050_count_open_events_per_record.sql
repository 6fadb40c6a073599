-- Claims without scanning events (issue 13): each sync_record counts its open (pending or
-- running) events, and a partial index holds only the records that have some, so a claim reads
-- the few claimable records instead of every open event. Statement-level triggers keep the
-- count exact whoever changes sync_event (push, claim, finish, requeue, an operator's UPDATE),
-- one set-based UPDATE per statement, never one per event. A worker's finish locks its records
-- in key order before the trigger runs; a push's trigger visits them in key order too.

ALTER TABLE sync_record ADD COLUMN open_events integer NOT NULL DEFAULT 0
    CHECK (open_events >= 0);

UPDATE sync_record r SET open_events = c.n
FROM (SELECT source, object_type, record_id, count(*) AS n FROM sync_event
      WHERE status IN ('pending', 'running') GROUP BY 1, 2, 3) c
WHERE (r.source, r.object_type, r.record_id) = (c.source, c.object_type, c.record_id);

CREATE INDEX sync_record_claimable_idx ON sync_record (not_before) WHERE open_events > 0;

-- Every claim and finish changes an event's status, and each change inserted an entry into this
-- index of four values, read by nothing that needs it. Dead events, which an operator lists and
-- requeues, have their partial index (0040), which claims and finishes never touch.
DROP INDEX sync_event_status_idx;

CREATE FUNCTION sync_event_count_open() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The change of each record's open events, in key order: the nested loop the planner
    -- picks for these few rows visits (and locks) the records in that order.
    IF TG_OP = 'INSERT' THEN
        UPDATE sync_record r SET open_events = r.open_events + d.delta
        FROM (SELECT source, object_type, record_id, count(*)::integer AS delta FROM new_rows
              WHERE status IN ('pending', 'running') GROUP BY 1, 2, 3 ORDER BY 1, 2, 3) d
        WHERE (r.source, r.object_type, r.record_id) = (d.source, d.object_type, d.record_id);
    ELSIF TG_OP = 'UPDATE' THEN
        UPDATE sync_record r SET open_events = r.open_events + d.delta
        FROM (SELECT n.source, n.object_type, n.record_id,
                     sum(CASE WHEN n.status IN ('pending', 'running') THEN 1 ELSE -1 END)
                       ::integer AS delta
              FROM new_rows n JOIN old_rows o ON o.id = n.id
              WHERE (n.status IN ('pending', 'running')) <> (o.status IN ('pending', 'running'))
              GROUP BY 1, 2, 3 ORDER BY 1, 2, 3) d
        WHERE (r.source, r.object_type, r.record_id) = (d.source, d.object_type, d.record_id)
          AND d.delta <> 0;
    ELSE
        UPDATE sync_record r SET open_events = r.open_events - d.delta
        FROM (SELECT source, object_type, record_id, count(*)::integer AS delta FROM old_rows
              WHERE status IN ('pending', 'running') GROUP BY 1, 2, 3 ORDER BY 1, 2, 3) d
        WHERE (r.source, r.object_type, r.record_id) = (d.source, d.object_type, d.record_id);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER sync_event_count_open_insert AFTER INSERT ON sync_event
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION sync_event_count_open();
CREATE TRIGGER sync_event_count_open_update AFTER UPDATE ON sync_event
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sync_event_count_open();
CREATE TRIGGER sync_event_count_open_delete AFTER DELETE ON sync_event
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION sync_event_count_open();
