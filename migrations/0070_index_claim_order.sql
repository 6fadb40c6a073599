-- Claims order the claimable records by (priority, not_before) and take the first few (queue.c
-- claim_sql). With only the (not_before) index of 0050, a claim during a large import read and
-- sorted every claimable record (50,000 for a 50,000-record import) to find the 100 it takes;
-- this index gives them in claim order, so a claim reads about as many rows as it leases.
CREATE INDEX sync_record_claim_order_idx ON sync_record (priority, not_before)
    WHERE open_events > 0;
