-- Every ledger entry names its transfer and its account (with the account's asset). A batch of
-- sales writes a few hundred entries in one statement, and a foreign key checks each entry on
-- its own: two lookups per entry, each locking the row it finds (KEY SHARE), so the platform's
-- fee account, which every sale names, was share-locked by every batch at once. The
-- statement-level check that already runs over each statement's entries now checks their
-- references too: each transfer once, each entry's account by its primary key. What a foreign
-- key also guarantees — the referenced row stays — holds by other means: transfers were already
-- append-only, and accounts can no longer be deleted, truncated, or change their id or asset.
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_transfer_id_fkey;
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_account_id_asset_fkey;

CREATE FUNCTION ledger_accounts_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger accounts are never deleted and keep their id and asset'
        USING ERRCODE = 'restrict_violation', CONSTRAINT = 'ledger_accounts_kept';
END;
$$;
-- Only an UPDATE naming id or asset fires it: the ledger's balance updates do not.
CREATE TRIGGER ledger_accounts_kept BEFORE UPDATE OF id, asset OR DELETE ON ledger_accounts
    FOR EACH ROW EXECUTE FUNCTION ledger_accounts_kept();
CREATE TRIGGER ledger_accounts_no_truncate BEFORE TRUNCATE ON ledger_accounts
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_accounts_kept();

CREATE OR REPLACE FUNCTION ledger_entries_checked() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing text;
    unretired boolean;
    unbalanced text;
BEGIN
    -- Each transfer the statement wrote to exists (a transfer is written before its entries).
    -- (A scalar subquery per transfer, through the primary key: NOT EXISTS would become an
    -- anti-join, which the planner may run by reading every transfer.)
    SELECT string_agg(t.transfer_id::text, ', ') INTO missing
    FROM (SELECT DISTINCT transfer_id FROM new_entries) t
    WHERE (SELECT x.id FROM ledger_transfers x WHERE x.id = t.transfer_id) IS NULL;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'ledger entries name transfers that do not exist: %', missing
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'ledger_entries_transfer_exists';
    END IF;
    -- Each entry's account exists and holds the entry's asset; retired credits never move.
    -- (OFFSET 0 keeps the lookup a subquery per entry, through the primary key: as a join, the
    -- planner may read every account.)
    SELECT string_agg(format('%s (%s)', n.account_id, n.asset), ', ')
               FILTER (WHERE a.asset IS DISTINCT FROM n.asset),
           coalesce(bool_or(n.amount < 0 AND a.kind = 'retired'), false)
    INTO missing, unretired
    FROM new_entries n
    LEFT JOIN LATERAL (SELECT x.asset, x.kind FROM ledger_accounts x WHERE x.id = n.account_id OFFSET 0) a
           ON true;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'ledger entries name accounts that do not exist or hold another asset: %', missing
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'ledger_entries_account_exists';
    END IF;
    IF unretired THEN
        RAISE EXCEPTION 'retired credits cannot move'
            USING ERRCODE = 'restrict_violation', CONSTRAINT = 'retired_is_final';
    END IF;
    -- Each transfer balances per asset (all its entries, through the transfer's index).
    SELECT string_agg(format('transfer %s: %s %s', t.transfer_id, s.asset, s.total), ', ') INTO unbalanced
    FROM (SELECT DISTINCT transfer_id FROM new_entries) t
    CROSS JOIN LATERAL (
        SELECT e.asset, sum(e.amount) AS total
        FROM ledger_entries e
        WHERE e.transfer_id = t.transfer_id
        GROUP BY e.asset HAVING sum(e.amount) <> 0) s;
    IF unbalanced IS NOT NULL THEN
        RAISE EXCEPTION 'transfers do not balance: %', unbalanced
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_transfer_balanced';
    END IF;
    RETURN NULL;
END;
$$;
