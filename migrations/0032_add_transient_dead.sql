-- Records in error are retried automatically (issue 8): an event dead-lettered after a
-- transient failure (rate limit, timeout, 5xx, lost connection) is marked, and gets one more
-- attempt every DEAD_RETRY_INTERVAL_SECONDS; a permanent refusal stays dead until resynced.
ALTER TABLE sync_event ADD COLUMN is_transient_dead boolean NOT NULL DEFAULT false;
