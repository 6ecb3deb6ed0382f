-- A session names the account it is signed in as, and that account's session version, in
-- columns of its own (written with the session's data, from it): the account behind a request
-- is then read together with its session, in one query, instead of the session first and the
-- account after it. Sessions saved before have neither and are read the old way until next saved.
ALTER TABLE tower_sessions.session
    ADD COLUMN user_id uuid REFERENCES users (id) ON DELETE CASCADE,
    ADD COLUMN session_version integer,
    ADD CHECK ((user_id IS NULL) = (session_version IS NULL));
