-- Sign-ins are also counted per account and address pair: one address can no longer pause an
-- account for everyone (the per-account count now slows sign-ins down first).
ALTER TABLE rate_limit_events DROP CONSTRAINT rate_limit_events_kind_check;
ALTER TABLE rate_limit_events ADD CONSTRAINT rate_limit_events_kind_check
    CHECK (kind IN ('login_ip', 'login_account', 'login_pair', 'signup_ip', 'reset_ip'));

-- A retirement carries the key of the form that asked for it, as purchases do: a repeated or
-- double-clicked retirement answers the first certificate instead of retiring twice.
-- The public certificate names the holder only when they chose so (the beneficiary always).
ALTER TABLE retirements
    ADD COLUMN idempotency_key text CHECK (length(idempotency_key) BETWEEN 8 AND 100),
    ADD COLUMN show_holder boolean NOT NULL DEFAULT false;
CREATE UNIQUE INDEX retirements_owner_key ON retirements (owner_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
