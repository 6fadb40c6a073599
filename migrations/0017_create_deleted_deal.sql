-- A deal deleted in HubSpot whose opportunity stays in Salesforce: its tombstone. A later
-- Salesforce-to-HubSpot event for the opportunity makes a new deal only when the opportunity
-- changed after the delete; an older change (a late outbound message, a poller event, the echo of
-- dealsync's own write) does not bring the deleted deal back.
CREATE TABLE deleted_deal (
    sf_opportunity_id text        PRIMARY KEY,
    hs_deal_id        text        NOT NULL,
    deleted_at        timestamptz NOT NULL DEFAULT now()
);
