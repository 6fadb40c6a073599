-- The webhook inbox (issue 13): the acknowledgement path stores each verified, parsed HubSpot
-- request body as ONE row here (one small insert per request, shared by the group commit)
-- instead of one sync_event row per event with its record upsert and three index entries. The
-- splitter (service/ingest/ingest_split.c) turns the rows into sync_event rows in large
-- batches, in id order, with the queue's own deduplication, and deletes them in the same
-- transaction. received_ms is the time the ack path parsed the body with (an event without
-- occurredAt takes it), so the split reads each body as the ack did.
CREATE TABLE ingest_inbox (
    id          bigserial PRIMARY KEY,
    source      text   NOT NULL CHECK (source IN ('salesforce', 'hubspot')),
    received_ms bigint NOT NULL,
    body        bytea  NOT NULL
);

-- Bodies are JSON of 2 to 30 KB that the splitter reads once and deletes: never compressed (no
-- CPU on the ack path), kept in the row up to 8 KB (a 10-event body: no TOAST rows and TOAST
-- index entries to write), out of line beyond.
ALTER TABLE ingest_inbox ALTER COLUMN body SET STORAGE EXTERNAL;
ALTER TABLE ingest_inbox SET (toast_tuple_target = 8160);
