-- While the Salesforce budget is short, workers claim only live work (queue_claim's live_only,
-- migration 0020): an event never tried before. An import's or a reconciliation sweep's event
-- (priority 1, migration 0030) is never tried before either, so it passed for live and the
-- held-back claims still took imports and sweeps. Live now also means priority 0: a webhook,
-- an outbound message, a poller's event.
CREATE OR REPLACE FUNCTION sync_event_is_live(e sync_event) RETURNS boolean
LANGUAGE sql STABLE AS $$ SELECT e.attempts = 0 AND e.priority = 0 $$;
