-- The marketplace: platform settings (fees, withdrawal limits), fixed-price listings whose
-- credits sit in a reserved account of their own, orders with invoices, payments through a
-- gateway, withdrawals.

-- One row of settings the admin changes (every change is audited by the service).
CREATE TABLE platform_settings (
    id                      boolean PRIMARY KEY DEFAULT true CHECK (id),
    buyer_fee_rate          numeric(7, 5) NOT NULL DEFAULT 0.025 CHECK (buyer_fee_rate BETWEEN 0 AND 0.2),
    seller_fee_rate         numeric(7, 5) NOT NULL DEFAULT 0.025 CHECK (seller_fee_rate BETWEEN 0 AND 0.2),
    withdrawal_min          numeric(20, 2) NOT NULL DEFAULT 50000 CHECK (withdrawal_min > 0),
    withdrawal_max          numeric(20, 2) NOT NULL DEFAULT 200000000,
    withdrawal_daily_max    numeric(20, 2) NOT NULL DEFAULT 500000000,
    withdrawal_fee          numeric(20, 2) NOT NULL DEFAULT 11000 CHECK (withdrawal_fee >= 0),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    updated_by              uuid REFERENCES users (id),
    CHECK (withdrawal_max >= withdrawal_min),
    CHECK (withdrawal_daily_max >= withdrawal_max)
);
INSERT INTO platform_settings DEFAULT VALUES;

-- A reserved account may belong to one listing (its `scope`): the listing's credits, with
-- their serials, sit there until sold or released.
--
-- Fee income is split over 16 accounts (`shard`), so concurrent sales do not queue on one
-- balance row; the platform's fee income is their sum.
ALTER TABLE ledger_accounts ADD COLUMN scope uuid;
ALTER TABLE ledger_accounts ADD COLUMN shard smallint NOT NULL DEFAULT 0 CHECK (shard BETWEEN 0 AND 15);
ALTER TABLE ledger_accounts DROP CONSTRAINT ledger_accounts_owner_asset_kind_key;
ALTER TABLE ledger_accounts ADD CONSTRAINT ledger_accounts_owner_asset_kind_key
    UNIQUE NULLS NOT DISTINCT (owner_id, asset, kind, scope, shard);
ALTER TABLE ledger_accounts ADD CONSTRAINT ledger_accounts_scope_is_held
    CHECK (scope IS NULL OR (kind = 'held' AND owner_id IS NOT NULL));
ALTER TABLE ledger_accounts ADD CONSTRAINT ledger_accounts_shard_is_fees
    CHECK (shard = 0 OR kind = 'platform_fees');
INSERT INTO ledger_accounts (owner_id, asset, kind, shard)
    SELECT NULL, 'money', 'platform_fees', s FROM generate_series(1, 15) s;

-- Order and invoice numbers come from sequences: concurrent sales never wait on a counter row.
-- (A purchase that rolls back after drawing a number leaves a gap.)
CREATE SEQUENCE order_number_seq;
CREATE SEQUENCE invoice_number_seq;
CREATE SEQUENCE listing_number_seq;
CREATE SEQUENCE payment_number_seq;
CREATE SEQUENCE withdrawal_number_seq;

CREATE TABLE listings (
    id              uuid PRIMARY KEY,
    number          text NOT NULL UNIQUE,
    seller_id       uuid NOT NULL REFERENCES users (id),
    kind            text NOT NULL DEFAULT 'fixed' CHECK (kind IN ('fixed', 'auction')),
    region          text NOT NULL,
    vintage         integer NOT NULL,
    -- What was listed at first; what is listed now (it only goes down); sold; waiting for a
    -- buyer's payment. Kilograms.
    listed_kg       bigint NOT NULL CHECK (listed_kg > 0),
    quantity_kg     bigint NOT NULL CHECK (quantity_kg >= 0),
    sold_kg         bigint NOT NULL DEFAULT 0 CHECK (sold_kg >= 0),
    pending_kg      bigint NOT NULL DEFAULT 0 CHECK (pending_kg >= 0),
    price_per_t     numeric(20, 2) NOT NULL CHECK (price_per_t > 0),
    min_lot_kg      bigint NOT NULL DEFAULT 1 CHECK (min_lot_kg >= 1),
    description     text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    expires_at      timestamptz,
    status          text NOT NULL DEFAULT 'active'
                    CHECK (status IN ('active', 'sold', 'cancelled', 'expired', 'suspended')),
    -- The credits: a hold from the seller's available credits into the listing's own account.
    hold_id         uuid NOT NULL UNIQUE REFERENCES ledger_holds (id),
    account_id      bigint NOT NULL UNIQUE REFERENCES ledger_accounts (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    closed_at       timestamptz,
    search          tsvector GENERATED ALWAYS AS (
                        to_tsvector('simple', number || ' ' || region || ' ' || vintage::text || ' ' || description)) STORED,
    -- Two buyers can never buy the same kilogram: what is sold or waiting never exceeds what
    -- is listed.
    CONSTRAINT listings_not_oversold CHECK (sold_kg + pending_kg <= quantity_kg),
    CHECK (quantity_kg <= listed_kg),
    CHECK (min_lot_kg <= listed_kg),
    CHECK ((status IN ('active', 'suspended')) = (closed_at IS NULL))
);
-- The search's orders, each an index the page walks in order and stops after 50 (the same
-- index backwards serves the descending price order).
CREATE INDEX listings_active_price_idx ON listings (price_per_t, created_at DESC, id) WHERE status = 'active';
CREATE INDEX listings_active_newest_idx ON listings (created_at DESC, id) WHERE status = 'active';
CREATE INDEX listings_active_quantity_idx ON listings ((quantity_kg - sold_kg - pending_kg) DESC, price_per_t, id)
    WHERE status = 'active';
CREATE INDEX listings_active_region_idx ON listings (region, price_per_t, created_at DESC, id) WHERE status = 'active';
CREATE INDEX listings_seller_idx ON listings (seller_id, created_at DESC);
CREATE INDEX listings_expiry_idx ON listings (expires_at) WHERE status = 'active' AND expires_at IS NOT NULL;
CREATE INDEX listings_search_idx ON listings USING gin (search);

-- Payments through a gateway: a top-up of the money wallet, or a checkout that pays an order.
CREATE TABLE payments (
    id              uuid PRIMARY KEY,
    number          text NOT NULL UNIQUE,
    user_id         uuid NOT NULL REFERENCES users (id),
    gateway         text NOT NULL,
    purpose         text NOT NULL CHECK (purpose IN ('top_up', 'checkout')),
    amount          numeric(20, 2) NOT NULL CHECK (amount > 0),
    currency        text NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed', 'expired')),
    gateway_ref     text,
    failure         text,
    transfer_id     bigint REFERENCES ledger_transfers (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    completed_at    timestamptz,
    UNIQUE (gateway, gateway_ref),
    CHECK ((status = 'pending') = (completed_at IS NULL)),
    CHECK ((status = 'succeeded') = (transfer_id IS NOT NULL))
);
CREATE INDEX payments_user_idx ON payments (user_id, created_at DESC);
CREATE INDEX payments_pending_idx ON payments (expires_at) WHERE status = 'pending';

-- A payment is settled once: pending → succeeded | failed | expired. The one exception is money
-- the gateway collected after the platform gave up waiting: expired → succeeded (it is
-- credited to the wallet; a checkout's order stays cancelled).
CREATE FUNCTION payments_settled_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE'
       OR NOT (OLD.status = 'pending' OR (OLD.status = 'expired' AND NEW.status = 'succeeded'))
       OR (to_jsonb(NEW) - 'status' - 'completed_at' - 'transfer_id' - 'failure' - 'gateway_ref')
          IS DISTINCT FROM (to_jsonb(OLD) - 'status' - 'completed_at' - 'transfer_id' - 'failure' - 'gateway_ref') THEN
        RAISE EXCEPTION 'payment % was already settled', OLD.number
            USING ERRCODE = 'restrict_violation', CONSTRAINT = 'payment_settled_once';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER payments_settled_once BEFORE UPDATE OR DELETE ON payments
    FOR EACH ROW EXECUTE FUNCTION payments_settled_once();

-- Every webhook delivery, verified or not (bad signatures are kept for the admin to see).
CREATE TABLE payment_events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    gateway         text NOT NULL,
    event_id        text,
    payment_id      uuid,
    verified        boolean NOT NULL,
    outcome         text NOT NULL,
    detail          text NOT NULL DEFAULT '',
    received_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payment_events_payment_idx ON payment_events (payment_id);

CREATE TABLE orders (
    id                  uuid PRIMARY KEY,
    number              text NOT NULL UNIQUE,
    listing_id          uuid NOT NULL REFERENCES listings (id),
    buyer_id            uuid NOT NULL REFERENCES users (id),
    seller_id           uuid NOT NULL REFERENCES users (id),
    quantity_kg         bigint NOT NULL CHECK (quantity_kg > 0),
    price_per_t         numeric(20, 2) NOT NULL CHECK (price_per_t > 0),
    amount              numeric(20, 2) NOT NULL CHECK (amount >= 0),
    buyer_fee           numeric(20, 2) NOT NULL CHECK (buyer_fee >= 0),
    seller_fee          numeric(20, 2) NOT NULL CHECK (seller_fee >= 0),
    buyer_pays          numeric(20, 2) NOT NULL,
    seller_receives     numeric(20, 2) NOT NULL CHECK (seller_receives >= 0),
    status              text NOT NULL CHECK (status IN ('pending', 'completed', 'cancelled', 'refunded')),
    -- A retried click carries the same key and finds this order.
    idempotency_key     text NOT NULL CHECK (length(idempotency_key) BETWEEN 8 AND 100),
    retire_beneficiary  text CHECK (length(retire_beneficiary) BETWEEN 1 AND 200),
    retire_reason       text CHECK (length(retire_reason) BETWEEN 1 AND 500),
    retirement_id       uuid REFERENCES retirements (id),
    -- A checkout: the gateway payment that pays it and the hold on the buyer's own money.
    payment_id          uuid UNIQUE REFERENCES payments (id),
    money_hold_id       uuid REFERENCES ledger_holds (id),
    transfer_id         bigint UNIQUE REFERENCES ledger_transfers (id),
    invoice_number      text UNIQUE,
    cancel_reason       text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    completed_at        timestamptz,
    closed_at           timestamptz,
    UNIQUE (buyer_id, idempotency_key),
    CHECK (buyer_id <> seller_id),
    CHECK (buyer_pays = amount + buyer_fee),
    CHECK (seller_receives = amount - seller_fee),
    CHECK ((retire_beneficiary IS NULL) = (retire_reason IS NULL)),
    CHECK ((status IN ('completed', 'refunded')) = (transfer_id IS NOT NULL AND invoice_number IS NOT NULL)),
    CHECK ((status = 'pending') = (closed_at IS NULL)),
    CHECK ((status IN ('completed', 'refunded')) = (completed_at IS NOT NULL)),
    CHECK (retirement_id IS NULL OR status IN ('completed', 'refunded'))
);
CREATE INDEX orders_buyer_idx ON orders (buyer_id, created_at DESC);
CREATE INDEX orders_seller_idx ON orders (seller_id, created_at DESC);
CREATE INDEX orders_listing_idx ON orders (listing_id, created_at DESC);
CREATE INDEX orders_completed_idx ON orders (completed_at) WHERE status = 'completed';

-- Orders move only forward: pending → completed | cancelled, completed → refunded.
CREATE FUNCTION orders_move_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NOT (
           (OLD.status = 'pending' AND NEW.status IN ('pending', 'completed', 'cancelled'))
        OR (OLD.status = 'completed' AND NEW.status IN ('completed', 'refunded')))
       OR (to_jsonb(NEW) - 'status' - 'transfer_id' - 'invoice_number' - 'retirement_id' - 'completed_at'
                         - 'closed_at' - 'cancel_reason' - 'money_hold_id')
          IS DISTINCT FROM (to_jsonb(OLD) - 'status' - 'transfer_id' - 'invoice_number' - 'retirement_id'
                         - 'completed_at' - 'closed_at' - 'cancel_reason' - 'money_hold_id')
       OR (OLD.transfer_id IS NOT NULL AND NEW.transfer_id IS DISTINCT FROM OLD.transfer_id)
       OR (OLD.invoice_number IS NOT NULL AND NEW.invoice_number IS DISTINCT FROM OLD.invoice_number) THEN
        RAISE EXCEPTION 'order % cannot go from % to %', OLD.number, OLD.status, NEW.status
            USING ERRCODE = 'restrict_violation', CONSTRAINT = 'order_moves_forward';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER orders_move_forward BEFORE UPDATE OR DELETE ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_move_forward();

CREATE TABLE withdrawals (
    id              uuid PRIMARY KEY,
    number          text NOT NULL UNIQUE,
    user_id         uuid NOT NULL REFERENCES users (id),
    amount          numeric(20, 2) NOT NULL CHECK (amount > 0),
    fee             numeric(20, 2) NOT NULL CHECK (fee >= 0),
    bank_name       text NOT NULL CHECK (length(bank_name) BETWEEN 2 AND 100),
    account_holder  text NOT NULL CHECK (length(account_holder) BETWEEN 2 AND 100),
    account_number  text NOT NULL CHECK (account_number ~ '^[0-9]{6,20}$'),
    idempotency_key text NOT NULL,
    -- amount + fee, held from the wallet at request time.
    hold_id         uuid NOT NULL UNIQUE REFERENCES ledger_holds (id),
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'paid', 'rejected')),
    decided_by      uuid REFERENCES users (id),
    decision_note   text NOT NULL DEFAULT '',
    transfer_id     bigint REFERENCES ledger_transfers (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    decided_at      timestamptz,
    UNIQUE (user_id, idempotency_key),
    CHECK ((status = 'pending') = (decided_at IS NULL AND decided_by IS NULL)),
    CHECK (status <> 'rejected' OR length(trim(decision_note)) > 0)
);
CREATE INDEX withdrawals_user_idx ON withdrawals (user_id, created_at DESC);
CREATE INDEX withdrawals_pending_idx ON withdrawals (created_at) WHERE status = 'pending';

-- Decided once: pending → paid | rejected.
CREATE FUNCTION withdrawals_decided_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR OLD.status <> 'pending'
       OR (to_jsonb(NEW) - 'status' - 'decided_by' - 'decision_note' - 'decided_at' - 'transfer_id')
          IS DISTINCT FROM (to_jsonb(OLD) - 'status' - 'decided_by' - 'decision_note' - 'decided_at' - 'transfer_id') THEN
        RAISE EXCEPTION 'withdrawal % was already decided', OLD.number
            USING ERRCODE = 'restrict_violation', CONSTRAINT = 'withdrawal_decided_once';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER withdrawals_decided_once BEFORE UPDATE OR DELETE ON withdrawals
    FOR EACH ROW EXECUTE FUNCTION withdrawals_decided_once();
