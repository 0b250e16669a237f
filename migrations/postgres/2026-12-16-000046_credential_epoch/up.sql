-- Every signed-in request needs its credential resolved (a session or API token, its
-- user and organization); those rows seldom change. An instance keeps what it resolved
-- in memory and polls this counter with its page-cache watch (every 100 ms). A change
-- that could end or alter a credential moves the counter in its own transaction, and
-- an instance that sees the counter move forgets every credential it kept.
--
-- What moves it: a session changed or ended; an API token revoked, re-dated, or deleted
-- (not its last use, written once a minute); any change to a user; an organization
-- deleted, renamed or of another kind (not the no-op updates that lock its row).
CREATE TABLE credential_epoch (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n BIGINT NOT NULL
);
INSERT INTO credential_epoch (id, n) VALUES (1, 0);

CREATE FUNCTION credential_epoch_move() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    UPDATE credential_epoch SET n = n + 1 WHERE id = 1;
    RETURN NULL;
END
$f$;

CREATE TRIGGER credential_epoch_sessions AFTER UPDATE OR DELETE OR TRUNCATE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION credential_epoch_move();
CREATE TRIGGER credential_epoch_api_tokens
    AFTER UPDATE OF revoked_at, expires_at, user_id, token_hash OR DELETE OR TRUNCATE
    ON api_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION credential_epoch_move();
CREATE TRIGGER credential_epoch_users AFTER UPDATE OR DELETE OR TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION credential_epoch_move();
CREATE TRIGGER credential_epoch_organizations_changed AFTER UPDATE ON organizations
    FOR EACH ROW
    WHEN (OLD.kind IS DISTINCT FROM NEW.kind OR OLD.name IS DISTINCT FROM NEW.name
          OR OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION credential_epoch_move();
CREATE TRIGGER credential_epoch_organizations_gone AFTER DELETE OR TRUNCATE ON organizations
    FOR EACH STATEMENT EXECUTE FUNCTION credential_epoch_move();
