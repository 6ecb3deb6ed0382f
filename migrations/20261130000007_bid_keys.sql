-- A bid or buy-now a client may retry (a double click, a lost answer) carries a key: the same
-- key from the same bidder on the same auction answers the first bid's result and places
-- nothing new.
ALTER TABLE bids
    ADD COLUMN idempotency_key text CHECK (char_length(idempotency_key) BETWEEN 1 AND 100);
CREATE UNIQUE INDEX bids_idempotency_idx ON bids (auction_id, bidder_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
