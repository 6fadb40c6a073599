-- A synced deal whose opportunity was deleted is first marked, not removed: its contacts' roll-ups
-- are recomputed without it, and only once they were written is the row removed. A failure in
-- between (HubSpot rate limit, say) retries the delete with the contacts still known.
ALTER TABLE synced_deal ADD COLUMN deleted_at timestamptz;
