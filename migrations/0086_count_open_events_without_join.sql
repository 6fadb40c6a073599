-- The open-events trigger (0050, 0085) matched an UPDATE's old and new rows by event id, a join
-- of two transition tables the planner estimates at one row each: a nested loop, comparing every
-- old row with every new one. A claim of 800 events (a setup or an import) spent 340 ms in it,
-- every claim of 100 about 10,000 comparisons. Each record's change is now the open rows it
-- gains minus those it loses, new and old rows counted apart (one sort or hash, no join); this
-- also counts an UPDATE that moves an event to another record, which the join did not (issue 13).
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
        FROM (SELECT source, object_type, record_id, sum(delta)::integer AS delta
              FROM (SELECT source, object_type, record_id, 1 AS delta FROM new_rows
                    WHERE status IN ('pending', 'running')
                    UNION ALL
                    SELECT source, object_type, record_id, -1 FROM old_rows
                    WHERE status IN ('pending', 'running')) c
              GROUP BY 1, 2, 3 HAVING sum(delta) <> 0 ORDER BY 1, 2, 3) d
        WHERE (r.source, r.object_type, r.record_id) = (d.source, d.object_type, d.record_id);
    ELSE
        UPDATE sync_record r SET open_events = r.open_events - d.delta
        FROM (SELECT source, object_type, record_id, count(*)::integer AS delta FROM old_rows
              WHERE status IN ('pending', 'running') GROUP BY 1, 2, 3 ORDER BY 1, 2, 3) d
        WHERE (r.source, r.object_type, r.record_id) = (d.source, d.object_type, d.record_id);
    END IF;
    RETURN NULL;
END
$$;
