-- Idempotency keys that survive crashes and disconnects. A claimed key holds a lease
-- (attempt, locked_until) that a retry may take over once it runs out, unless the
-- request's change committed: the change's own transaction sets `changed` (and names
-- the audited entity it was about), so "the change committed" and "the key says so" are
-- one fact. The answer is stored only for a request that changed something, sealed
-- under the master key; every key expires and is pruned. Old rows are not kept: they
-- could not say whether their request changed anything.
DROP TABLE idempotency_keys;
CREATE TABLE idempotency_keys (
    user_id TEXT NOT NULL REFERENCES users(id),
    idempotency_key TEXT NOT NULL,
    -- SHA-256 of method, matched path, query, content type and decoded body.
    request_hash TEXT NOT NULL,
    -- The attempt running the request now; a retry that takes the key over makes a new one.
    attempt TEXT NOT NULL,
    locked_until TIMESTAMP NOT NULL,
    changed BOOLEAN NOT NULL DEFAULT FALSE,
    entity_kind TEXT,
    entity_id TEXT,
    entity_action TEXT,
    -- The answer to replay (NULL until stored); the body sealed (AES-256-GCM).
    response_status INTEGER,
    response_content_type TEXT,
    response_sealed BYTEA,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, idempotency_key)
);
CREATE INDEX idempotency_keys_expires_at ON idempotency_keys(expires_at);
