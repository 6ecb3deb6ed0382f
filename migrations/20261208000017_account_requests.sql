-- Sign-up and password-reset requests are answered at once and the same way whether or not
-- the address has an account; a job handles them afterwards (issue 22, item 8: nobody can
-- learn from an answer, or from how long it took, which addresses have accounts). The e-mail
-- tells the address's owner what happened: a link to finish signing up, a note that the
-- account exists already, or a reset link.
CREATE TABLE account_requests (
    id            uuid PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('sign_up', 'reset')),
    email         text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    -- What a sign-up typed; the account is created from it when the link is followed.
    full_name     text,
    phone         text,
    role          text CHECK (role IN ('ev_owner', 'buyer')),
    requested_at  timestamptz NOT NULL DEFAULT now(),
    handled_at    timestamptz,
    -- What the job did: mailed a link, mailed a note to an existing account's owner, found no
    -- account to reset, or mailed nothing because the address had enough mail this hour.
    outcome       text CHECK (outcome IN ('link_sent', 'notice_sent', 'no_account', 'too_many')),
    CHECK (kind <> 'sign_up' OR (full_name IS NOT NULL AND phone IS NOT NULL AND role IS NOT NULL)),
    CHECK ((handled_at IS NULL) = (outcome IS NULL))
);
CREATE INDEX account_requests_pending_idx ON account_requests (requested_at) WHERE handled_at IS NULL;
CREATE INDEX account_requests_email_idx ON account_requests (email, handled_at);

-- The link that finishes a sign-up: whoever can read the address's mail chooses the password
-- (so nobody can prepare an account on someone else's address). Only the token's hash is kept.
CREATE TABLE sign_up_links (
    token_hash   bytea PRIMARY KEY,
    request_id   uuid NOT NULL UNIQUE REFERENCES account_requests (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    user_id      uuid REFERENCES users (id) ON DELETE CASCADE,
    CHECK (expires_at > created_at),
    CHECK ((used_at IS NULL) = (user_id IS NULL))
);
