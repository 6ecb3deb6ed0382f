-- Auctions (SPEC §5.2): a listing of kind 'auction' sells its whole lot to the highest bidder
-- when it ends. The rules live in app/src/domain/auction.rs; the row keeps what the next bid
-- needs (price, leader and their maximum) and a version that every accepted bid and the close
-- move forward, so live watchers can tell an update they have from one they missed.

CREATE TABLE auctions (
    listing_id       uuid PRIMARY KEY REFERENCES listings (id),
    starting_price   numeric(20, 2) NOT NULL CHECK (starting_price > 0),
    -- Hidden from bidders: they only see whether it is met.
    reserve_price    numeric(20, 2) CHECK (reserve_price >= starting_price),
    -- NULL: the default table by price level.
    increment        numeric(20, 2) CHECK (increment > 0),
    buy_now_price    numeric(20, 2) CHECK (buy_now_price > starting_price),
    soft_close_secs  integer NOT NULL CHECK (soft_close_secs BETWEEN 0 AND 3600),
    -- The fees of the sale are those of the day it was listed.
    buyer_fee_rate   numeric(6, 5) NOT NULL CHECK (buyer_fee_rate BETWEEN 0 AND 0.2),
    seller_fee_rate  numeric(6, 5) NOT NULL CHECK (seller_fee_rate BETWEEN 0 AND 0.2),
    ends_at          timestamptz NOT NULL,
    price            numeric(20, 2) NOT NULL,
    leader_id        uuid REFERENCES users (id),
    leader_max       numeric(20, 2),
    -- The leader's money, held up to their maximum for the whole lot plus the buyer fee. Only
    -- the leader holds anything: an outbid bidder's hold is voided in the same transaction.
    leader_hold_id   uuid UNIQUE REFERENCES ledger_holds (id),
    bid_count        integer NOT NULL DEFAULT 0 CHECK (bid_count >= 0),
    bidder_count     integer NOT NULL DEFAULT 0 CHECK (bidder_count >= 0),
    version          bigint NOT NULL DEFAULT 0 CHECK (version >= 0),
    bought_now       boolean NOT NULL DEFAULT false,
    outcome          text CHECK (outcome IN ('sold', 'no_bids', 'below_reserve', 'cancelled')),
    order_id         uuid UNIQUE REFERENCES orders (id),
    closed_at        timestamptz,
    CHECK ((leader_id IS NULL) = (leader_max IS NULL)),
    CHECK (leader_max IS NULL OR price <= leader_max),
    CHECK (price >= starting_price),
    CHECK ((closed_at IS NULL) = (outcome IS NULL)),
    CHECK ((outcome = 'sold') = (order_id IS NOT NULL)),
    -- An open auction with a leader holds their money; a closed one holds nothing.
    CHECK (CASE WHEN closed_at IS NULL THEN (leader_id IS NULL) = (leader_hold_id IS NULL)
                ELSE leader_hold_id IS NULL END)
);
-- The closing job walks the open auctions by their end.
CREATE INDEX auctions_open_ends_idx ON auctions (ends_at) WHERE closed_at IS NULL;
CREATE INDEX auctions_leader_idx ON auctions (leader_id) WHERE closed_at IS NULL;

-- A closed auction stays closed, and its version only moves forward.
CREATE FUNCTION auctions_move_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'auctions are never deleted' USING ERRCODE = 'restrict_violation';
    END IF;
    IF OLD.closed_at IS NOT NULL THEN
        RAISE EXCEPTION 'auction % is closed', OLD.listing_id
            USING ERRCODE = 'restrict_violation', CONSTRAINT = 'auction_closed_once';
    END IF;
    IF NEW.version <= OLD.version THEN
        RAISE EXCEPTION 'auction % version must move forward', OLD.listing_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'auction_version_forward';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER auctions_move_forward BEFORE UPDATE OR DELETE ON auctions
    FOR EACH ROW EXECUTE FUNCTION auctions_move_forward();

-- Every accepted bid, in the order it was accepted (its version); append-only.
CREATE TABLE bids (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    auction_id   uuid NOT NULL REFERENCES auctions (listing_id),
    bidder_id    uuid NOT NULL REFERENCES users (id),
    -- What the bidder is shown as on this auction: Bidder 1, 2, … in order of first bid.
    alias        integer NOT NULL CHECK (alias > 0),
    kind         text NOT NULL CHECK (kind IN ('bid', 'buy_now')),
    max_price    numeric(20, 2) NOT NULL CHECK (max_price > 0),
    -- The auction right after it.
    price_after  numeric(20, 2) NOT NULL,
    is_leading   boolean NOT NULL,
    extended_to  timestamptz,
    version      bigint NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (auction_id, version)
);
CREATE INDEX bids_bidder_idx ON bids (bidder_id, auction_id);
CREATE TRIGGER bids_append_only BEFORE UPDATE OR DELETE ON bids
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

-- Auctions a user follows (the "watching" filter).
CREATE TABLE auction_watchers (
    auction_id  uuid NOT NULL REFERENCES auctions (listing_id),
    user_id     uuid NOT NULL REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, auction_id)
);

-- The auction settings the admin may change (the soft-close window of new auctions).
ALTER TABLE platform_settings
    ADD COLUMN soft_close_secs integer NOT NULL DEFAULT 120 CHECK (soft_close_secs BETWEEN 0 AND 3600);
