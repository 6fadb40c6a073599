-- HubSpot-to-Salesforce (issue 5): the deal-contact associations dealsync has mirrored as
-- OpportunityContactRoles. A role is removed only when its association was mirrored before and
-- is gone now, so roles added in Salesforce (and not yet seen in HubSpot) are never removed.
CREATE TABLE deal_contact_role (
    hs_deal_id      text        NOT NULL,
    hs_contact_id   text        NOT NULL,
    sf_contact_id   text        NOT NULL,
    synced_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (hs_deal_id, hs_contact_id)
);
