-- What the sync knows between events: which records are linked, what dealsync last wrote on
-- each side (to recognise its own echoes), the pipelines and stages it created, operator
-- switches and polling watermarks.

-- One row per linked pair. kind: 'opportunity' (Opportunity <-> deal), 'account'
-- (Account <-> company), 'contact' (Contact <-> contact).
CREATE TABLE record_link (
    kind            text        NOT NULL CHECK (kind IN ('opportunity', 'account', 'contact')),
    sf_id           text        NOT NULL,
    hs_id           text        NOT NULL,
    -- The values dealsync last wrote to each side, as {"field": "value"}: a webhook or outbound
    -- message that only reports these values back is dealsync's own echo.
    sf_written      jsonb       NOT NULL DEFAULT '{}',
    hs_written      jsonb       NOT NULL DEFAULT '{}',
    -- The last values seen on each side after a sync, for conflict resolution (which side
    -- changed a two-way field since) and for the record's outcome history.
    sf_seen         jsonb       NOT NULL DEFAULT '{}',
    hs_seen         jsonb       NOT NULL DEFAULT '{}',
    sf_modified_at  timestamptz,
    hs_modified_at  timestamptz,
    synced_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, sf_id),
    UNIQUE (kind, hs_id)
);

-- A HubSpot deal pipeline per Salesforce opportunity record type ('' = the org has none:
-- "Salesforce - Default pipeline").
CREATE TABLE pipeline_map (
    record_type_id  text        PRIMARY KEY,
    hs_pipeline_id  text        NOT NULL UNIQUE,
    label           text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE stage_map (
    record_type_id  text        NOT NULL REFERENCES pipeline_map ON DELETE CASCADE,
    sf_stage_name   text        NOT NULL,
    hs_stage_id     text        NOT NULL,
    PRIMARY KEY (record_type_id, sf_stage_name),
    UNIQUE (record_type_id, hs_stage_id)
);

-- Operator switches, e.g. sync_deals = on|off (off until an operator turns it on, as in
-- HubSpot).
CREATE TABLE sync_setting (
    name        text        PRIMARY KEY,
    value       text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Where each poller got to (deleted opportunities, changed contact roles), and when it last
-- ran; the row is locked by the process that polls, so one process polls at a time.
CREATE TABLE poll_watermark (
    name        text        PRIMARY KEY,
    watermark   timestamptz NOT NULL,
    last_run_at timestamptz
);
