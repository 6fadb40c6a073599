-- A contact role the HubSpot-to-Salesforce direction is about to create from a deal's contact
-- association is recorded first, as pending: a create whose answer is lost (a timeout, a kill)
-- is still known as dealsync's own role made from that association. Without the row, the
-- Salesforce-to-HubSpot direction took the role for a Salesforce user's and associated the
-- contact with the deal again after a user had removed it there (chaos run), and the deal's
-- next sync did not remove the role. A pending row whose role is missing is no role a user
-- deleted (the create may not have been carried out); the row is confirmed (is_pending false)
-- once the deal's roles are synced.
ALTER TABLE deal_contact_role ADD COLUMN is_pending boolean NOT NULL DEFAULT false;
