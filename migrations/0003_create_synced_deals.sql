-- The opportunities dealsync synced to HubSpot deals and the contacts of their contact roles,
-- as dealsync last saw them: the source of the contacts' lifecycle stages and deal roll-ups
-- (computed from the deals dealsync synced, since HubSpot's own roll-ups are read-only), and of
-- the deal-contact associations to remove when a contact role goes away.
CREATE TABLE synced_deal (
    sf_opportunity_id text        PRIMARY KEY,
    hs_deal_id        text        NOT NULL,
    created_at        timestamptz NOT NULL,
    close_date        timestamptz,
    amount            numeric,
    is_closed         boolean     NOT NULL,
    is_won            boolean     NOT NULL,
    synced_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE synced_deal_contact (
    sf_opportunity_id text NOT NULL REFERENCES synced_deal ON DELETE CASCADE,
    sf_contact_id     text NOT NULL,
    hs_contact_id     text NOT NULL,
    PRIMARY KEY (sf_opportunity_id, sf_contact_id)
);
CREATE INDEX synced_deal_contact_hs_idx ON synced_deal_contact (hs_contact_id);
