-- Every committed change to a listing is announced on the live channel, once per transaction
-- (identical notifications in one transaction are delivered once), so each instance knows its
-- cached marketplace pages are out of date. Rolled-back changes announce nothing; statements
-- that change no row (the periodic jobs' sweeps) announce nothing either.
CREATE FUNCTION announce_market_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('live', '{"topic":"market","id":"","version":0}');
    RETURN NULL;
END
$$;

CREATE TRIGGER listings_announce_changes
    AFTER INSERT OR UPDATE OR DELETE ON listings
    FOR EACH ROW EXECUTE FUNCTION announce_market_change();

CREATE TRIGGER listings_announce_truncate
    AFTER TRUNCATE ON listings
    FOR EACH STATEMENT EXECUTE FUNCTION announce_market_change();
