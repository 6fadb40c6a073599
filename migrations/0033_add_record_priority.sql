-- Live changes first, without reading events at claim time (issue 8 with issue 13's claims):
-- each record carries the priority of its most urgent open event, set by the push that queues
-- it (0 live, 1 background), and claims order records by it.
ALTER TABLE sync_record ADD COLUMN priority smallint NOT NULL DEFAULT 0;
UPDATE sync_record r SET priority = e.priority
FROM (SELECT source, object_type, record_id, min(priority) AS priority FROM sync_event
      WHERE status IN ('pending', 'running') GROUP BY 1, 2, 3) e
WHERE (r.source, r.object_type, r.record_id) = (e.source, e.object_type, e.record_id);
