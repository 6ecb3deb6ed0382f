-- Every committed change to listings is announced on the live channel, once per transaction
-- (identical notifications in one transaction are delivered once), so each instance knows its
-- cached marketplace pages are out of date. Rolled-back changes announce nothing.
CREATE FUNCTION announce_market_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('live', '{"topic":"market","id":"","version":0}');
    RETURN NULL;
END
$$;

CREATE TRIGGER listings_announce_changes
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON listings
    FOR EACH STATEMENT EXECUTE FUNCTION announce_market_change();
