-- The fields of a remembered write (sf_written, hs_written) whose outcome is unknown: noted before
-- the write, and cut off by a timeout or a kill (it may or may not have been carried out),
-- {"field": true}. A value that equals such a write is dealsync's own only when the CRM itself
-- says so (HubSpot's property history or the webhook's source; Salesforce's LastModifiedById):
-- taken for dealsync's echo unasked, a user's change to exactly that value after a write that was
-- not carried out was finished as an echo, and the other side's older value written over it.
ALTER TABLE record_link
    ADD COLUMN sf_maybe jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN hs_maybe jsonb NOT NULL DEFAULT '{}';
