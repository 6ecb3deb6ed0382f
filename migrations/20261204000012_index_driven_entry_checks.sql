-- The ledger entries' statement-level check looked its rows up with joins the planner was free
-- to run as scans: the balance check read every entry of the ledger (a hash join against the
-- statement's few transfers) and the retired check every account. Each ledger write grew with
-- the ledger. Both now reach each row through an index (a subquery per transfer and per entry,
-- which the planner cannot turn into a join), so a write costs the same at any ledger size.
CREATE OR REPLACE FUNCTION ledger_entries_checked() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    unbalanced text;
BEGIN
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
    IF EXISTS (SELECT 1 FROM new_entries n
               WHERE n.amount < 0
                 AND (SELECT a.kind FROM ledger_accounts a WHERE a.id = n.account_id) = 'retired') THEN
        RAISE EXCEPTION 'retired credits cannot move'
            USING ERRCODE = 'restrict_violation', CONSTRAINT = 'retired_is_final';
    END IF;
    RETURN NULL;
END;
$$;
