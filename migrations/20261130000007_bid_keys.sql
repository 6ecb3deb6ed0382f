-- A bid or buy-now a client may retry (a double click, a lost answer) carries a key: the same
-- key from the same bidder on the same auction answers the first bid's result and places
-- nothing new.
ALTER TABLE bids
    ADD COLUMN idempotency_key text CHECK (char_length(idempotency_key) BETWEEN 1 AND 100);
CREATE UNIQUE INDEX bids_idempotency_idx ON bids (auction_id, bidder_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Retire on win: a bidder may ask, with their bid, that the lot be retired at once for a named
-- beneficiary if they win; the winner's latest bid decides.
ALTER TABLE bids
    ADD COLUMN retire_beneficiary text CHECK (char_length(retire_beneficiary) BETWEEN 1 AND 200),
    ADD COLUMN retire_reason text CHECK (char_length(retire_reason) BETWEEN 1 AND 500),
    ADD CHECK ((retire_beneficiary IS NULL) = (retire_reason IS NULL));
