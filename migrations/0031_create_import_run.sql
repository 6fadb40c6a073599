-- Imports (issue 8): one row per `dealsync import` of one side. The cursor is saved after each
-- page, so an import stopped by a signal, kill -9 or a database restart continues where it got
-- to; its events carry the run id in their dedup keys, so a page queued twice is stored once.
CREATE TABLE import_run (
    id              bigserial   PRIMARY KEY,
    source          text        NOT NULL CHECK (source IN ('salesforce', 'hubspot')),
    since           timestamptz,
    status          text        NOT NULL DEFAULT 'running'
                                CHECK (status IN ('running', 'listed')),
    -- Where the listing got to: {"after": last record id} (Salesforce) or
    -- {"pipelines": [...], "pipeline": index, "after": last deal id} (HubSpot).
    cursor          jsonb       NOT NULL DEFAULT '{}',
    total           bigint,
    pages_done      integer     NOT NULL DEFAULT 0,
    records_seen    bigint      NOT NULL DEFAULT 0,
    records_queued  bigint      NOT NULL DEFAULT 0,
    started_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    listed_at       timestamptz
);
-- One unfinished import per side and window: a second `dealsync import` continues it.
CREATE UNIQUE INDEX import_run_open_idx ON import_run (source, coalesce(since, '-infinity'))
    WHERE status = 'running';
