-- A finish counted each record's open events twice over: its own UPDATE of sync_record (lease,
-- backoff), then the statement trigger of 0050 updating the same rows again, a second tuple
-- version of every finished record with its index entries. The finish now sets open_events in
-- its own UPDATE and says so for that one statement (the transaction-local setting
-- dealsync.open_events_counted, which the trigger clears as it skips): every other change of
-- sync_event, an operator's included, is still counted by the trigger (issue 13).
CREATE OR REPLACE FUNCTION sync_event_count_open() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('dealsync.open_events_counted', true) = 'on' THEN
        PERFORM set_config('dealsync.open_events_counted', '', true);
        RETURN NULL;
    END IF;
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

-- (not_before) WHERE open_events > 0 is read by nothing the claim-order index of 0070
-- (priority, not_before, same predicate) does not serve, and each finish paid an entry in it.
DROP INDEX sync_record_claimable_idx;

-- Room in each page for the claim's new tuple version: a lease (lease_owner, lease_expires_at,
-- no index on them) is then a heap-only update, with no index entries (new pages only).
ALTER TABLE sync_record SET (fillfactor = 70);
