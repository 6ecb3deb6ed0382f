-- Notifications (SPEC §8): every event is written by one function, `notify`, inside the
-- transaction that causes it. It keeps the in-app notification, queues the e-mail (unless the
-- user turned that event's e-mail off) and announces the change to the user's live bell; all
-- of it happens only if the transaction commits.
--
-- While a notification is unread, the same event about the same thing (kind + link: "new bid
-- on LST-000042") updates it instead of piling up: `repeats` counts them, and only the first
-- sends an e-mail.

UPDATE notifications SET kind = 'listing_sold' WHERE kind = 'auction_sold';
UPDATE notifications SET kind = 'listing_ended' WHERE kind = 'auction_unsold';
UPDATE notifications SET link = '/notifications' WHERE link IS NULL;
-- Older unread duplicates are marked read (the newest stays).
UPDATE notifications n SET read_at = now()
WHERE read_at IS NULL AND EXISTS (
    SELECT 1 FROM notifications m
    WHERE m.user_id = n.user_id AND m.kind = n.kind AND m.link = n.link AND m.read_at IS NULL
      AND (m.created_at, m.id) > (n.created_at, n.id));

ALTER TABLE notifications
    ALTER COLUMN link SET NOT NULL,
    ADD COLUMN repeats integer NOT NULL DEFAULT 1 CHECK (repeats >= 1),
    ADD CONSTRAINT notifications_kind_check CHECK (kind IN (
        'request_approved', 'request_rejected', 'listing_sold', 'listing_expiring', 'listing_ended',
        'listing_suspended', 'payment_received', 'payment_failed', 'new_bid', 'outbid',
        'auction_won', 'auction_lost', 'withdrawal_decided', 'dispute_opened', 'dispute_resolved',
        'order_updated')),
    ADD CONSTRAINT notifications_title_check CHECK (char_length(title) BETWEEN 1 AND 200),
    ADD CONSTRAINT notifications_link_check CHECK (link LIKE '/%');
CREATE UNIQUE INDEX notifications_unread_key ON notifications (user_id, kind, link) WHERE read_at IS NULL;
CREATE INDEX notifications_unread_idx ON notifications (user_id) WHERE read_at IS NULL;

-- E-mail choices: a row only where the user chose; no row means e-mail is sent.
CREATE TABLE email_preferences (
    user_id     uuid NOT NULL REFERENCES users (id),
    kind        text NOT NULL,
    email       boolean NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, kind)
);

-- The page a notification e-mail links to (the sender puts the platform's address before it).
ALTER TABLE email_outbox ADD COLUMN link text CHECK (link LIKE '/%');

-- A fixed-price listing about to expire warns its seller once.
ALTER TABLE listings ADD COLUMN expiry_warned_at timestamptz;

CREATE FUNCTION notify(p_user uuid, p_kind text, p_title text, p_body text, p_link text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    times integer;
BEGIN
    INSERT INTO notifications AS n (id, user_id, kind, title, body, link)
    VALUES (gen_random_uuid(), p_user, p_kind, p_title, p_body, p_link)
    ON CONFLICT (user_id, kind, link) WHERE read_at IS NULL
    DO UPDATE SET title = EXCLUDED.title, body = EXCLUDED.body, created_at = now(),
                  repeats = n.repeats + 1
    RETURNING repeats INTO times;
    IF times = 1 THEN
        INSERT INTO email_outbox (id, to_address, subject, body_text, link)
        SELECT gen_random_uuid(), u.email, p_title, p_body, p_link
        FROM users u
        WHERE u.id = p_user AND u.status = 'active'
          AND NOT EXISTS (SELECT 1 FROM email_preferences e
                          WHERE e.user_id = p_user AND e.kind = p_kind AND NOT e.email);
    END IF;
    PERFORM pg_notify('live', json_build_object(
        'topic', 'inbox', 'id', p_user::text,
        'version', (extract(epoch FROM clock_timestamp()) * 1000000)::bigint)::text);
END $$;
