-- The durable queue. One row per accepted webhook event (sync_event) and one row per record
-- that has ever had an event (sync_record), which carries the record's lease and backoff so
-- that a record is worked on by one worker at a time, in order, with all its pending events.

CREATE TABLE sync_record (
    source           text        NOT NULL CHECK (source IN ('salesforce', 'hubspot')),
    object_type      text        NOT NULL,
    record_id        text        NOT NULL,
    lease_owner      text,
    lease_expires_at timestamptz,
    not_before       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, object_type, record_id)
);

CREATE TABLE sync_event (
    id             bigserial   PRIMARY KEY,
    source         text        NOT NULL CHECK (source IN ('salesforce', 'hubspot')),
    dedup_key      text        NOT NULL,
    object_type    text        NOT NULL,
    record_id      text        NOT NULL,
    event_type     text        NOT NULL,
    occurred_at    timestamptz NOT NULL,
    received_at    timestamptz NOT NULL DEFAULT now(),
    payload        jsonb       NOT NULL,
    status         text        NOT NULL DEFAULT 'pending'
                               CHECK (status IN ('pending', 'running', 'done', 'dead')),
    attempts       integer     NOT NULL DEFAULT 0,
    lease_owner    text,
    last_error     text,
    last_attempt_at timestamptz,
    finished_at    timestamptz,
    UNIQUE (source, dedup_key),
    FOREIGN KEY (source, object_type, record_id) REFERENCES sync_record
);

-- Claim: records with open events, oldest first.
CREATE INDEX sync_event_open_idx ON sync_event (source, object_type, record_id, occurred_at, id)
    WHERE status IN ('pending', 'running');
CREATE INDEX sync_event_status_idx ON sync_event (status);
CREATE INDEX sync_event_finished_idx ON sync_event (finished_at) WHERE status = 'done';

-- What happened to each event, one row per outcome: the answer to "why does this deal look
-- like this". A crash between the work and this row leaves no row, and the event is retried.
CREATE TABLE sync_outcome (
    id          bigserial   PRIMARY KEY,
    event_id    bigint      NOT NULL,
    source      text        NOT NULL,
    object_type text        NOT NULL,
    record_id   text        NOT NULL,
    outcome     text        NOT NULL CHECK (outcome IN ('done', 'retry', 'dead', 'skipped')),
    attempt     integer     NOT NULL,
    detail      text,
    worker      text        NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sync_outcome_record_idx ON sync_outcome (source, object_type, record_id, at);
CREATE INDEX sync_outcome_event_idx ON sync_outcome (event_id);
