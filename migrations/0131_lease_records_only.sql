-- A claim leases records and no longer writes their events (queue.c, claim_sql): each event
-- written at every claim (status pending to running, attempts, lease owner, time) was a new
-- tuple version with an entry in three indexes and a row in the open-events trigger's
-- transition tables, for what the record's lease already says. A pending event of a record
-- whose lease has not expired is being worked on ("running" in the status views and metrics);
-- an attempt is counted when it ends, or, for a lease that ran out without a finish or a
-- release, when the record is taken over. The claim's time, which every event carried as
-- last_attempt_at, is kept on the record and given to its events by the finish.
-- Events left 'running' by a worker of an older version are still claimed and finished.
ALTER TABLE sync_record ADD COLUMN leased_at timestamptz;
