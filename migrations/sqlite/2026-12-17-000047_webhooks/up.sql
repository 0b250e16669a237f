-- Events pushed to an organization's system (webhooks). An organization has at most one
-- endpoint; its signing secret is derived from the master key and the endpoint's
-- secret version, so no secret is stored.
CREATE TABLE webhook_endpoints (
    organization_id TEXT PRIMARY KEY REFERENCES organizations(id),
    url TEXT NOT NULL,
    secret_version INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- One row an event and recipient: the event as sent (the body's bytes never change, so a
-- redelivery carries the same id) and its delivery state, an outbox like mail's.
CREATE TABLE webhook_events (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    locked_until TIMESTAMP,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    delivered_at TIMESTAMP
);
CREATE INDEX webhook_events_due ON webhook_events(status, next_attempt_at);
CREATE INDEX webhook_events_organization ON webhook_events(organization_id, created_at);

-- Every try, kept for the delivery log.
CREATE TABLE webhook_attempts (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL REFERENCES webhook_events(id),
    attempted_at TIMESTAMP NOT NULL,
    url TEXT NOT NULL,
    status_code INTEGER,
    error TEXT,
    duration_ms INTEGER NOT NULL
);
CREATE INDEX webhook_attempts_event ON webhook_attempts(event_id, attempted_at);
