-- What dealsync knows a HubSpot contact holds in its roll-up properties and lifecycle stage:
-- what it last wrote there, or read or created there (hs_contacts.c). Roll-ups are then written
-- when they differ from it, without reading the contact first; the lifecycle stage, which people
-- change too, is read again before dealsync moves it (unless dealsync created the contact in the
-- same batch).
CREATE TABLE contact_rollup_known (
    hs_contact_id text PRIMARY KEY,
    properties    jsonb NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
