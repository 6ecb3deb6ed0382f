-- Checks that ran once per row now run once per statement, over every row the statement
-- wrote: a batch of sales writes hundreds of ledger entries and notifications at once.

-- The ledger's entries: a transfer's entries are always written by one statement, so every
-- transfer a statement wrote to must balance per asset when it ends (it used to be checked at
-- commit, entry by entry); retired credits never move again.
DROP TRIGGER ledger_entries_balanced ON ledger_entries;
DROP TRIGGER ledger_entries_retired_is_final ON ledger_entries;
DROP FUNCTION ledger_transfer_balanced();
DROP FUNCTION ledger_retired_is_final();

CREATE FUNCTION ledger_entries_checked() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    unbalanced text;
BEGIN
    SELECT string_agg(format('transfer %s: %s %s', transfer_id, asset, total), ', ') INTO unbalanced
    FROM (SELECT e.transfer_id, e.asset, sum(e.amount) AS total
          FROM ledger_entries e
          WHERE e.transfer_id IN (SELECT transfer_id FROM new_entries)
          GROUP BY e.transfer_id, e.asset HAVING sum(e.amount) <> 0) s;
    IF unbalanced IS NOT NULL THEN
        RAISE EXCEPTION 'transfers do not balance: %', unbalanced
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_transfer_balanced';
    END IF;
    IF EXISTS (SELECT 1 FROM new_entries n JOIN ledger_accounts a ON a.id = n.account_id
               WHERE n.amount < 0 AND a.kind = 'retired') THEN
        RAISE EXCEPTION 'retired credits cannot move'
            USING ERRCODE = 'restrict_violation', CONSTRAINT = 'retired_is_final';
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER ledger_entries_checked AFTER INSERT ON ledger_entries
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_checked();

-- Notifications: `notify_all` sends several in three statements (each (user, kind, link) at
-- most once per call); `notify` is one of them.
CREATE FUNCTION notify_all(p_users uuid[], p_kinds text[], p_titles text[], p_bodies text[], p_links text[])
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    WITH n AS (
        INSERT INTO notifications AS n (id, user_id, kind, title, body, link)
        SELECT gen_random_uuid(), x.user_id, x.kind, x.title, x.body, x.link
        FROM UNNEST(p_users, p_kinds, p_titles, p_bodies, p_links) AS x(user_id, kind, title, body, link)
        ON CONFLICT (user_id, kind, link) WHERE read_at IS NULL
        DO UPDATE SET title = EXCLUDED.title, body = EXCLUDED.body, created_at = now(),
                      repeats = n.repeats + 1
        RETURNING n.user_id, n.kind, n.title, n.body, n.link, n.repeats)
    INSERT INTO email_outbox (id, to_address, subject, body_text, link)
    SELECT gen_random_uuid(), u.email, n.title, n.body, n.link
    FROM n JOIN users u ON u.id = n.user_id
    WHERE n.repeats = 1 AND u.status = 'active'
      AND NOT EXISTS (SELECT 1 FROM email_preferences e
                      WHERE e.user_id = n.user_id AND e.kind = n.kind AND NOT e.email);
    PERFORM pg_notify('live', json_build_object(
        'topic', 'inbox', 'id', s.user_id::text,
        'version', (extract(epoch FROM clock_timestamp()) * 1000000)::bigint)::text)
    FROM (SELECT DISTINCT x.user_id FROM UNNEST(p_users) AS x(user_id)) s;
END $$;

CREATE OR REPLACE FUNCTION notify(p_user uuid, p_kind text, p_title text, p_body text, p_link text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM notify_all(ARRAY[p_user], ARRAY[p_kind], ARRAY[p_title], ARRAY[p_body], ARRAY[p_link]);
END $$;
