-- Accounts, sessions, password resets, login throttling, e-mail outbox and the audit trail.

CREATE TABLE users (
    id               uuid PRIMARY KEY,
    email            text NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    password_hash    text NOT NULL,
    role             text NOT NULL CHECK (role IN ('ev_owner', 'buyer', 'cva', 'admin')),
    full_name        text NOT NULL CHECK (length(full_name) BETWEEN 1 AND 100),
    phone            text NOT NULL CHECK (length(phone) BETWEEN 7 AND 20),
    status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    -- Bumped when every session of the user must end (password change, suspension).
    session_version  integer NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_key UNIQUE (email)
);
CREATE INDEX users_created_at_idx ON users (created_at DESC);

-- tower-sessions' PostgreSQL store (the schema lives here, not in the store's own migrate()).
CREATE SCHEMA tower_sessions;
CREATE TABLE tower_sessions.session (
    id           text PRIMARY KEY NOT NULL,
    data         bytea NOT NULL,
    expiry_date  timestamptz NOT NULL
);
CREATE INDEX session_expiry_idx ON tower_sessions.session (expiry_date);

CREATE TABLE password_reset_tokens (
    token_hash   bytea PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose      text NOT NULL CHECK (purpose IN ('reset', 'welcome')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX password_reset_tokens_user_idx ON password_reset_tokens (user_id);

-- Events counted by the rate limiter (failed logins per address and per account, sign-ups,
-- reset requests). Kept in the database so every app instance sees the same counts.
CREATE TABLE rate_limit_events (
    id          bigserial PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('login_ip', 'login_account', 'signup_ip', 'reset_ip')),
    key         text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rate_limit_events_key_idx ON rate_limit_events (kind, key, at);

-- Transactional outbox for e-mail: written in the same transaction as the change that causes
-- it, delivered by a background job that claims rows with FOR UPDATE SKIP LOCKED.
CREATE TABLE email_outbox (
    id            uuid PRIMARY KEY,
    to_address    text NOT NULL,
    subject       text NOT NULL,
    body_text     text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    attempts      integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    sent_at       timestamptz,
    last_error    text
);
CREATE INDEX email_outbox_pending_idx ON email_outbox (next_attempt_at) WHERE sent_at IS NULL;

-- Append-only audit trail of every state change.
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor_id    uuid REFERENCES users (id),
    action      text NOT NULL,
    entity      text NOT NULL,
    entity_id   text NOT NULL,
    before      jsonb,
    after       jsonb
);
CREATE INDEX audit_log_entity_idx ON audit_log (entity, entity_id, at);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC);

CREATE FUNCTION forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_change();
