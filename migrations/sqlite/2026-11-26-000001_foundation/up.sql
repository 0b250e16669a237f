-- Foundation schema (SQLite). Keep in step with migrations/postgres.
-- Identifiers are UUIDs stored as text, money is integer fen, times are UTC.

CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    issuer_kind TEXT,
    provider_kind TEXT,
    name TEXT NOT NULL,
    uscc TEXT NOT NULL UNIQUE,
    uscc_whitelisted BOOLEAN NOT NULL DEFAULT 0,
    short_code TEXT UNIQUE,
    email TEXT,
    created_at TIMESTAMP NOT NULL,
    CHECK (kind IN ('enterprise', 'issuer', 'agency', 'tenderee', 'provider', 'operator')),
    CHECK ((kind = 'issuer') = (issuer_kind IS NOT NULL)),
    CHECK ((kind = 'provider') = (provider_kind IS NOT NULL))
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    email TEXT,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    resident_id_hmac TEXT UNIQUE,
    resident_id_masked TEXT,
    active BOOLEAN NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX users_organization ON users(organization_id);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    revoked_at TIMESTAMP
);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES users(id),
    csrf_token TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);

CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    tenderee_id TEXT NOT NULL REFERENCES organizations(id),
    agency_id TEXT NOT NULL REFERENCES organizations(id),
    bid_deadline TIMESTAMP NOT NULL,
    bid_opening_at TIMESTAMP NOT NULL,
    bid_validity_days INTEGER NOT NULL CHECK (bid_validity_days > 0),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CHECK (bid_opening_at >= bid_deadline)
);
CREATE INDEX projects_agency ON projects(agency_id);

CREATE TABLE sections (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id),
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    bond_amount_fen BIGINT NOT NULL CHECK (bond_amount_fen > 0),
    estimated_price_fen BIGINT CHECK (estimated_price_fen > 0),
    -- The winning bidder once the section is awarded (中标).
    awarded_enterprise_id TEXT REFERENCES organizations(id),
    awarded_at TIMESTAMP,
    contract_signed_at TIMESTAMP,
    UNIQUE (project_id, code)
);

CREATE TABLE applications (
    id TEXT PRIMARY KEY,
    enterprise_id TEXT NOT NULL REFERENCES organizations(id),
    section_id TEXT NOT NULL REFERENCES sections(id),
    issuer_id TEXT NOT NULL REFERENCES organizations(id),
    kind TEXT NOT NULL,
    amount_fen BIGINT NOT NULL CHECK (amount_fen > 0),
    valid_from TIMESTAMP NOT NULL,
    valid_until TIMESTAMP NOT NULL,
    status TEXT NOT NULL,
    premium_fen BIGINT,
    decline_reason TEXT,
    created_by TEXT NOT NULL REFERENCES users(id),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CHECK (valid_until > valid_from)
);
CREATE INDEX applications_enterprise ON applications(enterprise_id);
CREATE INDEX applications_issuer_status ON applications(issuer_id, status);

CREATE TABLE issuer_certificates (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    fingerprint_sha256 TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    serial TEXT NOT NULL,
    not_before TIMESTAMP NOT NULL,
    not_after TIMESTAMP NOT NULL,
    certificate_der BLOB NOT NULL,
    encrypted_private_key BLOB,
    created_at TIMESTAMP NOT NULL,
    deactivated_at TIMESTAMP
);
CREATE INDEX issuer_certificates_organization ON issuer_certificates(organization_id);

CREATE TABLE trust_anchors (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    fingerprint_sha256 TEXT NOT NULL UNIQUE,
    certificate_der BLOB NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE crls (
    id TEXT PRIMARY KEY,
    issuer_name TEXT NOT NULL,
    crl_der BLOB NOT NULL,
    this_update TIMESTAMP NOT NULL,
    next_update TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE guarantees (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    application_id TEXT NOT NULL UNIQUE REFERENCES applications(id),
    issuer_id TEXT NOT NULL REFERENCES organizations(id),
    enterprise_id TEXT NOT NULL REFERENCES organizations(id),
    section_id TEXT NOT NULL REFERENCES sections(id),
    status TEXT NOT NULL,
    claimed_from TEXT,
    amount_fen BIGINT NOT NULL CHECK (amount_fen > 0),
    valid_from TIMESTAMP NOT NULL,
    valid_until TIMESTAMP NOT NULL,
    current_version INTEGER NOT NULL,
    verification_code_hash TEXT NOT NULL,
    -- The code again, sealed under the master key, so the letter can be printed again.
    verification_code_sealed BLOB NOT NULL,
    issued_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    -- When the bidder was told the guarantee runs out soon (sent once).
    expiry_notice_at TIMESTAMP
);
CREATE INDEX guarantees_section ON guarantees(section_id);
CREATE INDEX guarantees_status_valid_until ON guarantees(status, valid_until);

-- The exact bytes an issuer signs, fixed before signing so that an external signer and
-- the exchange sign and store the same document. One per application (and amendment).
CREATE TABLE guarantee_drafts (
    id TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications(id),
    guarantee_number TEXT NOT NULL,
    version INTEGER NOT NULL,
    document BLOB NOT NULL,
    document_sha256 TEXT NOT NULL,
    verification_code_hash TEXT NOT NULL,
    verification_code_sealed BLOB NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (guarantee_number, version),
    UNIQUE (application_id, version)
);

CREATE TABLE guarantee_versions (
    id TEXT PRIMARY KEY,
    guarantee_id TEXT NOT NULL REFERENCES guarantees(id),
    version INTEGER NOT NULL,
    document BLOB NOT NULL,
    document_sha256 TEXT NOT NULL,
    signature BLOB,
    signer_certificate_id TEXT REFERENCES issuer_certificates(id),
    created_at TIMESTAMP NOT NULL,
    UNIQUE (guarantee_id, version)
);

CREATE TABLE claims (
    id TEXT PRIMARY KEY,
    guarantee_id TEXT NOT NULL REFERENCES guarantees(id),
    reason_code TEXT NOT NULL,
    statement TEXT NOT NULL,
    amount_fen BIGINT NOT NULL CHECK (amount_fen > 0),
    status TEXT NOT NULL,
    filed_by TEXT NOT NULL REFERENCES users(id),
    filed_at TIMESTAMP NOT NULL,
    decide_by TIMESTAMP NOT NULL,
    decided_by TEXT REFERENCES users(id),
    decided_at TIMESTAMP,
    decision_reason TEXT
);
CREATE INDEX claims_guarantee ON claims(guarantee_id);

-- Facts the credit archive scores: e.g. a paid claim against a bidder's guarantee.
CREATE TABLE credit_events (
    id TEXT PRIMARY KEY,
    subject_uscc TEXT NOT NULL,
    kind TEXT NOT NULL,
    positive BOOLEAN NOT NULL,
    amount_fen BIGINT,
    reference TEXT NOT NULL,
    source TEXT NOT NULL,
    occurred_at TIMESTAMP NOT NULL
);
CREATE INDEX credit_events_subject ON credit_events(subject_uscc);

CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    occurred_at TIMESTAMP NOT NULL,
    actor_user_id TEXT,
    actor_organization_id TEXT,
    action TEXT NOT NULL,
    entity_kind TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_entity ON audit_log(entity_kind, entity_id);

-- One row: the head of the audit chain. Appending updates it first, which takes a
-- row lock on PostgreSQL (SQLite serialises writers already), so the chain never forks.
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq BIGINT NOT NULL,
    last_hash TEXT NOT NULL
);
INSERT INTO audit_head (id, last_seq, last_hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE mail_outbox (
    id TEXT PRIMARY KEY,
    to_address TEXT NOT NULL,
    subject TEXT NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    locked_until TIMESTAMP,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP
);
CREATE INDEX mail_outbox_due ON mail_outbox(status, next_attempt_at);

CREATE TABLE idempotency_keys (
    user_id TEXT NOT NULL REFERENCES users(id),
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    response_status INTEGER NOT NULL,
    response_body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, idempotency_key)
);
