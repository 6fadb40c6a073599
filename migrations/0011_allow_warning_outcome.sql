-- An outcome that synced the record but left something out (an owner with no match, a value with
-- no option on the other side, no company) is a warning, counted apart from a plain success.
ALTER TABLE sync_outcome DROP CONSTRAINT sync_outcome_outcome_check;
ALTER TABLE sync_outcome ADD CONSTRAINT sync_outcome_outcome_check
    CHECK (outcome IN ('done', 'retry', 'dead', 'skipped', 'warning'));
