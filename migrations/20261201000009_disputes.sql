-- Admin operations: disputes and refunds, suspended listings, the KYC flag that gates
-- withdrawals, and the settings behind them.

-- A buyer may dispute a completed order within this many days of its completion.
ALTER TABLE platform_settings
    ADD COLUMN dispute_window_days integer NOT NULL DEFAULT 14 CHECK (dispute_window_days BETWEEN 1 AND 365),
    -- What a new auction's form offers as its length.
    ADD COLUMN auction_default_hours integer NOT NULL DEFAULT 72 CHECK (auction_default_hours BETWEEN 1 AND 720);

CREATE SEQUENCE dispute_number_seq;

-- One dispute per order. A refund is a reversing ledger transfer (money back to the buyer from
-- the seller and the fee income; the order's credits the buyer has not retired back to the
-- seller, with their own serials); nothing is edited.
CREATE TABLE disputes (
    id              uuid PRIMARY KEY,
    number          text NOT NULL UNIQUE,
    order_id        uuid NOT NULL UNIQUE REFERENCES orders (id),
    opened_by       uuid NOT NULL REFERENCES users (id),
    reason          text NOT NULL CHECK (char_length(reason) BETWEEN 10 AND 2000),
    status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'refunded', 'rejected')),
    decided_by      uuid REFERENCES users (id),
    decision_note   text CHECK (char_length(decision_note) <= 2000),
    -- The refund: the money transfer, the credits transfer (none when every kilogram was
    -- retired), what went back.
    refund_transfer_id  bigint UNIQUE REFERENCES ledger_transfers (id),
    return_transfer_id  bigint UNIQUE REFERENCES ledger_transfers (id),
    refunded_amount numeric(20, 2) CHECK (refunded_amount > 0),
    returned_kg     bigint CHECK (returned_kg >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    decided_at      timestamptz,
    CHECK ((status = 'open') = (decided_at IS NULL AND decided_by IS NULL)),
    CHECK ((status = 'refunded') = (refund_transfer_id IS NOT NULL AND refunded_amount IS NOT NULL AND returned_kg IS NOT NULL)),
    CHECK (return_transfer_id IS NULL OR status = 'refunded'),
    CHECK (status <> 'rejected' OR char_length(decision_note) >= 1)
);
CREATE INDEX disputes_open_idx ON disputes (created_at) WHERE status = 'open';

-- A dispute is decided once.
CREATE FUNCTION disputes_decided_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'open' THEN
        RAISE EXCEPTION 'dispute % is already decided', OLD.number
            USING ERRCODE = 'restrict_violation', CONSTRAINT = 'disputes_decided_once';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER disputes_decided_once BEFORE UPDATE ON disputes
    FOR EACH ROW EXECUTE FUNCTION disputes_decided_once();
CREATE TRIGGER disputes_kept BEFORE DELETE ON disputes
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

-- Suspension: why, and by whom.
ALTER TABLE listings
    ADD COLUMN suspended_reason text CHECK (char_length(suspended_reason) BETWEEN 1 AND 500),
    ADD CONSTRAINT listings_suspension_has_reason CHECK ((status = 'suspended') = (suspended_reason IS NOT NULL));

-- Identity checked (know your customer): withdrawals need it.
ALTER TABLE users
    ADD COLUMN kyc_verified_at timestamptz,
    ADD COLUMN kyc_verified_by uuid REFERENCES users (id);

-- A suspended listing still expires (its unsold credits return to the seller).
DROP INDEX listings_expiry_idx;
CREATE INDEX listings_expiry_idx ON listings (expires_at)
    WHERE status IN ('active', 'suspended') AND expires_at IS NOT NULL;
