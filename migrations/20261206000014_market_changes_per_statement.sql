-- A committed change to listings is still announced once per transaction, but the trigger now
-- runs once per statement over the rows it changed, not once per row: a batch of sales updates
-- every listing it sold from in one statement. A statement that changed no row (the periodic
-- jobs' sweeps) still announces nothing.
DROP TRIGGER listings_announce_changes ON listings;

CREATE OR REPLACE FUNCTION announce_market_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- TRUNCATE has no transition table: it always changed something worth announcing.
    IF TG_OP = 'TRUNCATE' OR EXISTS (SELECT 1 FROM changed) THEN
        PERFORM pg_notify('live', '{"topic":"market","id":"","version":0}');
    END IF;
    RETURN NULL;
END
$$;

-- A trigger with transition tables fires for one event only, hence one per event.
CREATE TRIGGER listings_announce_inserts AFTER INSERT ON listings
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION announce_market_change();
CREATE TRIGGER listings_announce_updates AFTER UPDATE ON listings
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION announce_market_change();
CREATE TRIGGER listings_announce_deletes AFTER DELETE ON listings
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION announce_market_change();
