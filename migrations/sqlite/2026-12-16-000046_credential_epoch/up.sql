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

CREATE TRIGGER credential_epoch_session_changed AFTER UPDATE ON sessions
BEGIN UPDATE credential_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER credential_epoch_session_gone AFTER DELETE ON sessions
BEGIN UPDATE credential_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER credential_epoch_api_token_changed
AFTER UPDATE OF revoked_at, expires_at, user_id, token_hash ON api_tokens
BEGIN UPDATE credential_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER credential_epoch_api_token_gone AFTER DELETE ON api_tokens
BEGIN UPDATE credential_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER credential_epoch_user_changed AFTER UPDATE ON users
BEGIN UPDATE credential_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER credential_epoch_user_gone AFTER DELETE ON users
BEGIN UPDATE credential_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER credential_epoch_organization_changed AFTER UPDATE ON organizations
WHEN OLD.kind IS NOT NEW.kind OR OLD.name IS NOT NEW.name OR OLD.id IS NOT NEW.id
BEGIN UPDATE credential_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER credential_epoch_organization_gone AFTER DELETE ON organizations
BEGIN UPDATE credential_epoch SET n = n + 1 WHERE id = 1; END;
