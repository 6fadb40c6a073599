-- Live changes first (issue 8): events of an import or a reconciliation sweep are queued with a
-- lower priority (a higher number) than webhook and outbound-message events, and a claim takes
-- records by the most urgent of their open events, so a user's edit during a big import syncs
-- within seconds. 0 = live, 1 = background.
ALTER TABLE sync_event ADD COLUMN priority smallint NOT NULL DEFAULT 0;
