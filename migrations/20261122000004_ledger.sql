-- The double-entry ledger (money and credits), serial blocks, credit requests and their
-- verification, retirements and certificates, in-app notifications.
--
-- Amounts: money in the platform currency with 2 decimals; credits in whole kilograms.
-- Both live in numeric(20, 2) columns; a CHECK keeps credit amounts whole.

CREATE TABLE ledger_accounts (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- NULL for the platform's own accounts.
    owner_id  uuid REFERENCES users (id),
    asset     text NOT NULL CHECK (asset IN ('money', 'credit')),
    kind      text NOT NULL CHECK (kind IN ('available', 'held', 'retired',
                                            'platform_fees', 'buffer_pool', 'gateway_clearing', 'issuance_source')),
    balance   numeric(20, 2) NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ledger_accounts_user_kinds CHECK (
        (owner_id IS NULL) = (kind IN ('platform_fees', 'buffer_pool', 'gateway_clearing', 'issuance_source'))),
    -- Users never owe the platform: their balances cannot go below zero.
    CONSTRAINT ledger_accounts_user_not_negative CHECK (owner_id IS NULL OR balance >= 0),
    -- The buffer pool and fee income are real holdings too.
    CONSTRAINT ledger_accounts_pool_not_negative CHECK (kind NOT IN ('buffer_pool', 'platform_fees') OR balance >= 0),
    CONSTRAINT ledger_accounts_whole_kg CHECK (asset <> 'credit' OR balance = trunc(balance)),
    CONSTRAINT ledger_accounts_retired_credit_only CHECK (kind <> 'retired' OR asset = 'credit'),
    CONSTRAINT ledger_accounts_owner_asset_kind_key UNIQUE NULLS NOT DISTINCT (owner_id, asset, kind),
    CONSTRAINT ledger_accounts_id_asset_key UNIQUE (id, asset)
);

-- The platform's accounts exist from the start.
INSERT INTO ledger_accounts (owner_id, asset, kind) VALUES
    (NULL, 'money', 'platform_fees'),
    (NULL, 'money', 'gateway_clearing'),
    (NULL, 'credit', 'platform_fees'),
    (NULL, 'credit', 'buffer_pool'),
    (NULL, 'credit', 'issuance_source');

-- A hold (pending transfer): `amount` moved from the owner's available account to their held
-- account; parts of it are later posted to their destination, or what is left is voided back.
-- Each happens once: `remaining` only goes down, and a hold is pending exactly while
-- something remains.
CREATE TABLE ledger_holds (
    id              uuid PRIMARY KEY,
    asset           text NOT NULL CHECK (asset IN ('money', 'credit')),
    available_id    bigint NOT NULL,
    held_id         bigint NOT NULL,
    amount          numeric(20, 2) NOT NULL CHECK (amount > 0),
    remaining       numeric(20, 2) NOT NULL CHECK (remaining >= 0),
    status          text NOT NULL CHECK (status IN ('pending', 'posted', 'voided')),
    purpose         text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    closed_at       timestamptz,
    CHECK (remaining <= amount),
    CHECK ((status = 'pending') = (remaining > 0)),
    CHECK ((status = 'pending') = (closed_at IS NULL)),
    FOREIGN KEY (available_id, asset) REFERENCES ledger_accounts (id, asset),
    FOREIGN KEY (held_id, asset) REFERENCES ledger_accounts (id, asset)
);
CREATE INDEX ledger_holds_pending_idx ON ledger_holds (available_id) WHERE status = 'pending';

CREATE FUNCTION ledger_holds_only_close() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR OLD.status <> 'pending' OR NEW.remaining > OLD.remaining
       OR (NEW.id, NEW.asset, NEW.available_id, NEW.held_id, NEW.amount, NEW.purpose, NEW.created_at)
          IS DISTINCT FROM (OLD.id, OLD.asset, OLD.available_id, OLD.held_id, OLD.amount, OLD.purpose, OLD.created_at) THEN
        RAISE EXCEPTION 'hold % can only be posted or voided while pending', OLD.id
            USING ERRCODE = 'restrict_violation', CONSTRAINT = 'ledger_hold_closed';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER ledger_holds_only_close BEFORE UPDATE OR DELETE ON ledger_holds
    FOR EACH ROW EXECUTE FUNCTION ledger_holds_only_close();

CREATE TABLE ledger_transfers (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             text NOT NULL,
    hold_id          uuid REFERENCES ledger_holds (id),
    -- Retryable transfers carry a key; a retry finds the first transfer instead of a second.
    idempotency_key  text UNIQUE,
    reference        text,
    memo             text NOT NULL DEFAULT '',
    actor_id         uuid REFERENCES users (id),
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_transfers_hold_idx ON ledger_transfers (hold_id) WHERE hold_id IS NOT NULL;

CREATE TABLE ledger_entries (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transfer_id    bigint NOT NULL REFERENCES ledger_transfers (id),
    account_id     bigint NOT NULL,
    asset          text NOT NULL,
    amount         numeric(20, 2) NOT NULL CHECK (amount <> 0),
    balance_after  numeric(20, 2) NOT NULL,
    CHECK (asset <> 'credit' OR amount = trunc(amount)),
    FOREIGN KEY (account_id, asset) REFERENCES ledger_accounts (id, asset)
);
CREATE INDEX ledger_entries_account_idx ON ledger_entries (account_id, id);
CREATE INDEX ledger_entries_transfer_idx ON ledger_entries (transfer_id);

CREATE TRIGGER ledger_transfers_append_only BEFORE UPDATE OR DELETE ON ledger_transfers
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
CREATE TRIGGER ledger_transfers_no_truncate BEFORE TRUNCATE ON ledger_transfers
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_change();
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_change();

-- Every transfer balances per asset, checked at commit (its entries arrive one by one).
CREATE FUNCTION ledger_transfer_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    unbalanced text;
BEGIN
    SELECT string_agg(asset || ' ' || total, ', ') INTO unbalanced
    FROM (SELECT asset, sum(amount) AS total FROM ledger_entries
          WHERE transfer_id = NEW.transfer_id GROUP BY asset HAVING sum(amount) <> 0) s;
    IF unbalanced IS NOT NULL THEN
        RAISE EXCEPTION 'transfer % does not balance: %', NEW.transfer_id, unbalanced
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_transfer_balanced';
    END IF;
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_transfer_balanced();

-- Retired credits never move again.
CREATE FUNCTION ledger_retired_is_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.amount < 0 AND EXISTS (SELECT 1 FROM ledger_accounts WHERE id = NEW.account_id AND kind = 'retired') THEN
        RAISE EXCEPTION 'retired credits cannot move'
            USING ERRCODE = 'restrict_violation', CONSTRAINT = 'retired_is_final';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER ledger_entries_retired_is_final BEFORE INSERT ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_retired_is_final();

-- Human-readable numbers, sequential per kind: REQ-000001, CERT-2026-000001, …
CREATE TABLE number_sequences (
    kind  text PRIMARY KEY,
    next  bigint NOT NULL CHECK (next >= 1)
);

-- Credit requests (SPEC §4).
CREATE TABLE credit_requests (
    id                      uuid PRIMARY KEY,
    number                  text NOT NULL UNIQUE,
    owner_id                uuid NOT NULL REFERENCES users (id),
    -- NULL: all the owner's vehicles (of one grid region).
    vehicle_id              uuid REFERENCES vehicles (id),
    period_from             date NOT NULL,
    period_to               date NOT NULL,
    region                  text NOT NULL,
    vintage                 integer NOT NULL,
    methodology_version_id  uuid NOT NULL REFERENCES methodology_versions (id),
    trips                   integer NOT NULL CHECK (trips > 0),
    charging_sessions       integer NOT NULL DEFAULT 0 CHECK (charging_sessions >= 0),
    distance_km             numeric NOT NULL,
    energy_kwh              numeric NOT NULL,
    baseline_kg             numeric NOT NULL,
    project_kg              numeric NOT NULL,
    avoided_kg              numeric NOT NULL CHECK (avoided_kg >= 0),
    -- Whole kilograms asked for (avoided rounded down), the buffer's share and the owner's.
    gross_kg                bigint NOT NULL CHECK (gross_kg > 0),
    buffer_kg               bigint NOT NULL CHECK (buffer_kg >= 0),
    net_kg                  bigint NOT NULL CHECK (net_kg >= 0),
    risk_score              integer NOT NULL CHECK (risk_score BETWEEN 0 AND 100),
    flags                   jsonb NOT NULL DEFAULT '[]',
    calculation             jsonb NOT NULL,
    status                  text NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'cancelled')),
    created_at              timestamptz NOT NULL DEFAULT now(),
    closed_at               timestamptz,
    CHECK (period_from <= period_to),
    CHECK (extract(year FROM period_from) = vintage AND extract(year FROM period_to) = vintage),
    CHECK (gross_kg = buffer_kg + net_kg),
    CHECK ((status = 'pending') = (closed_at IS NULL))
);
CREATE INDEX credit_requests_owner_idx ON credit_requests (owner_id, created_at DESC);
CREATE INDEX credit_requests_pending_idx ON credit_requests (created_at) WHERE status = 'pending';

-- A request is decided once: only pending → approved | rejected | cancelled.
CREATE FUNCTION credit_requests_decided_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR OLD.status <> 'pending'
       OR (to_jsonb(NEW) - 'status' - 'closed_at') IS DISTINCT FROM (to_jsonb(OLD) - 'status' - 'closed_at') THEN
        RAISE EXCEPTION 'credit request % was already decided', OLD.number
            USING ERRCODE = 'restrict_violation', CONSTRAINT = 'credit_request_decided_once';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER credit_requests_decided_once BEFORE UPDATE OR DELETE ON credit_requests
    FOR EACH ROW EXECUTE FUNCTION credit_requests_decided_once();

-- A trip or charging session belongs to at most one pending or approved request: its claim
-- points at the request, may be set only while unset, and released only when the request was
-- rejected or cancelled.
ALTER TABLE trips ADD CONSTRAINT trips_claim_fkey FOREIGN KEY (claim_id) REFERENCES credit_requests (id);
ALTER TABLE charging_sessions ADD CONSTRAINT charging_sessions_claim_fkey FOREIGN KEY (claim_id) REFERENCES credit_requests (id);
CREATE INDEX trips_claim_idx ON trips (claim_id) WHERE claim_id IS NOT NULL;
CREATE INDEX charging_sessions_claim_idx ON charging_sessions (claim_id) WHERE claim_id IS NOT NULL;

CREATE FUNCTION claims_are_exclusive() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.claim_id IS DISTINCT FROM OLD.claim_id THEN
        IF OLD.claim_id IS NOT NULL AND NEW.claim_id IS NOT NULL THEN
            RAISE EXCEPTION '% % is already claimed', TG_TABLE_NAME, OLD.id
                USING ERRCODE = 'unique_violation', CONSTRAINT = 'claim_exclusive';
        END IF;
        IF NEW.claim_id IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM credit_requests WHERE id = NEW.claim_id AND status = 'pending') THEN
            RAISE EXCEPTION 'only a pending request can claim % %', TG_TABLE_NAME, OLD.id
                USING ERRCODE = 'restrict_violation', CONSTRAINT = 'claim_exclusive';
        END IF;
        IF OLD.claim_id IS NOT NULL AND EXISTS (
            SELECT 1 FROM credit_requests WHERE id = OLD.claim_id AND status IN ('pending', 'approved')) THEN
            RAISE EXCEPTION '% % stays claimed while its request is pending or approved', TG_TABLE_NAME, OLD.id
                USING ERRCODE = 'restrict_violation', CONSTRAINT = 'claim_exclusive';
        END IF;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER trips_claims_are_exclusive BEFORE UPDATE OF claim_id ON trips
    FOR EACH ROW EXECUTE FUNCTION claims_are_exclusive();
CREATE TRIGGER charging_sessions_claims_are_exclusive BEFORE UPDATE OF claim_id ON charging_sessions
    FOR EACH ROW EXECUTE FUNCTION claims_are_exclusive();

-- The verifier's decision: one per request.
CREATE TABLE verifications (
    id           uuid PRIMARY KEY,
    request_id   uuid NOT NULL UNIQUE REFERENCES credit_requests (id),
    verifier_id  uuid NOT NULL REFERENCES users (id),
    decision     text NOT NULL CHECK (decision IN ('approved', 'approved_reduced', 'rejected')),
    approved_kg  bigint NOT NULL CHECK (approved_kg >= 0),
    notes        text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((decision = 'rejected') = (approved_kg = 0)),
    CHECK (decision = 'approved' OR length(trim(notes)) > 0)
);
CREATE TRIGGER verifications_append_only BEFORE UPDATE OR DELETE ON verifications
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

-- Serial numbers are allocated from one platform-wide counter, so no two issuances share one.
CREATE TABLE credit_issuances (
    id                      uuid PRIMARY KEY,
    request_id              uuid NOT NULL UNIQUE REFERENCES credit_requests (id),
    verification_id         uuid NOT NULL UNIQUE REFERENCES verifications (id),
    owner_id                uuid NOT NULL REFERENCES users (id),
    region                  text NOT NULL,
    vintage                 integer NOT NULL,
    methodology_version_id  uuid NOT NULL REFERENCES methodology_versions (id),
    verifier_id             uuid NOT NULL REFERENCES users (id),
    serials                 int8range NOT NULL CHECK (lower(serials) >= 1 AND NOT isempty(serials)),
    gross_kg                bigint NOT NULL CHECK (gross_kg > 0),
    buffer_kg               bigint NOT NULL CHECK (buffer_kg >= 0),
    net_kg                  bigint NOT NULL CHECK (net_kg >= 0),
    transfer_id             bigint NOT NULL REFERENCES ledger_transfers (id),
    issued_at               timestamptz NOT NULL DEFAULT now(),
    CHECK (gross_kg = buffer_kg + net_kg),
    CHECK (upper(serials) - lower(serials) = gross_kg),
    CONSTRAINT credit_issuances_serials_excl EXCLUDE USING gist (serials WITH &&)
);
CREATE TRIGGER credit_issuances_append_only BEFORE UPDATE OR DELETE ON credit_issuances
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

-- Where every issued kilogram is now: blocks of consecutive serials in one credit account.
-- Moving part of a block splits it; no serial is ever in two blocks.
CREATE TABLE serial_blocks (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    issuance_id  uuid NOT NULL REFERENCES credit_issuances (id),
    serials      int8range NOT NULL CHECK (NOT isempty(serials) AND lower_inc(serials) AND NOT upper_inc(serials)),
    account_id   bigint NOT NULL,
    asset        text NOT NULL DEFAULT 'credit' CHECK (asset = 'credit'),
    retirement_id uuid,
    FOREIGN KEY (account_id, asset) REFERENCES ledger_accounts (id, asset),
    CONSTRAINT serial_blocks_serials_excl EXCLUDE USING gist (serials WITH &&)
);
CREATE INDEX serial_blocks_account_idx ON serial_blocks (account_id, lower(serials));
CREATE INDEX serial_blocks_retirement_idx ON serial_blocks (retirement_id) WHERE retirement_id IS NOT NULL;

CREATE FUNCTION serial_blocks_retired_is_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.retirement_id IS NOT NULL THEN
        RAISE EXCEPTION 'serials % are retired and cannot move', OLD.serials
            USING ERRCODE = 'restrict_violation', CONSTRAINT = 'retired_is_final';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER serial_blocks_retired_is_final BEFORE UPDATE OR DELETE ON serial_blocks
    FOR EACH ROW EXECUTE FUNCTION serial_blocks_retired_is_final();

-- Which serials each credit transfer moved, from which account to which.
CREATE TABLE serial_movements (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transfer_id      bigint NOT NULL REFERENCES ledger_transfers (id),
    issuance_id      uuid NOT NULL REFERENCES credit_issuances (id),
    serials          int8range NOT NULL CHECK (NOT isempty(serials)),
    from_account_id  bigint REFERENCES ledger_accounts (id),
    to_account_id    bigint NOT NULL REFERENCES ledger_accounts (id)
);
CREATE INDEX serial_movements_transfer_idx ON serial_movements (transfer_id);
CREATE INDEX serial_movements_from_idx ON serial_movements (from_account_id);
CREATE INDEX serial_movements_to_idx ON serial_movements (to_account_id);
CREATE TRIGGER serial_movements_append_only BEFORE UPDATE OR DELETE ON serial_movements
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

-- A retirement and its certificate.
CREATE TABLE retirements (
    id            uuid PRIMARY KEY,
    number        text NOT NULL UNIQUE,
    owner_id      uuid NOT NULL REFERENCES users (id),
    beneficiary   text NOT NULL CHECK (length(beneficiary) BETWEEN 1 AND 200),
    reason        text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    quantity_kg   bigint NOT NULL CHECK (quantity_kg > 0),
    transfer_id   bigint NOT NULL UNIQUE REFERENCES ledger_transfers (id),
    retired_at    timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER retirements_append_only BEFORE UPDATE OR DELETE ON retirements
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
-- Deferred: a retirement's transfer stamps the blocks first, then the retirement row is written.
ALTER TABLE serial_blocks ADD CONSTRAINT serial_blocks_retirement_fkey
    FOREIGN KEY (retirement_id) REFERENCES retirements (id) DEFERRABLE INITIALLY DEFERRED;

-- In-app notifications (the bell comes later; rows are written with the events).
CREATE TABLE notifications (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id),
    kind        text NOT NULL,
    title       text NOT NULL,
    body        text NOT NULL DEFAULT '',
    link        text,
    read_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notifications_user_idx ON notifications (user_id, created_at DESC);
