-- Reductions of a guarantee's amount (URDG 758 art. 11) and the letters the exchange
-- writes when a guarantee is released or reduced.

-- A reduction the issuer proposed: a new version of the signed document with a lower
-- amount, which takes effect only when the beneficiary's side (the tender agency)
-- accepts it. The signed bytes are kept here, not among guarantee_versions, until then:
-- a refused or withdrawn version never becomes a version of the guarantee.
CREATE TABLE guarantee_reductions (
    id TEXT PRIMARY KEY,
    guarantee_id TEXT NOT NULL REFERENCES guarantees(id),
    -- The version the amendment is, and the version in force it reduces.
    version INTEGER NOT NULL,
    base_version INTEGER NOT NULL,
    amount_before_fen BIGINT NOT NULL,
    amount_fen BIGINT NOT NULL CHECK (amount_fen > 0),
    reason TEXT NOT NULL,
    status TEXT NOT NULL,
    proposed_by TEXT NOT NULL,
    proposed_at TIMESTAMP NOT NULL,
    -- Set when the issuer signs (hosted or uploaded), with the exchange's time-stamp.
    document BYTEA,
    document_sha256 TEXT,
    signature BYTEA,
    signer_certificate_id TEXT REFERENCES issuer_certificates(id),
    signed_at TIMESTAMP,
    -- Accepted or refused by the agency, or withdrawn (by a claim: 'system' otherwise).
    decided_by TEXT,
    decided_at TIMESTAMP,
    decision_reason TEXT,
    CHECK (amount_fen < amount_before_fen),
    CHECK (version > base_version),
    UNIQUE (guarantee_id, version)
);
-- At most one reduction of a guarantee may still take effect.
CREATE UNIQUE INDEX guarantee_reductions_one_pending ON guarantee_reductions (guarantee_id)
    WHERE status IN ('drafted', 'awaiting_acceptance');
CREATE INDEX guarantee_reductions_document ON guarantee_reductions (document_sha256);

-- Release and reduction letters: RFC 8785 canonical JSON kept byte-exact, with the
-- exchange's RFC 3161 time-stamp token over those bytes.
CREATE TABLE guarantee_letters (
    id TEXT PRIMARY KEY,
    guarantee_id TEXT NOT NULL REFERENCES guarantees(id),
    kind TEXT NOT NULL,
    reduction_id TEXT UNIQUE REFERENCES guarantee_reductions(id),
    document BYTEA NOT NULL,
    document_sha256 TEXT NOT NULL,
    timestamp_token BYTEA NOT NULL,
    created_at TIMESTAMP NOT NULL,
    CHECK ((kind = 'reduction') = (reduction_id IS NOT NULL))
);
-- A guarantee is released once.
CREATE UNIQUE INDEX guarantee_letters_one_release ON guarantee_letters (guarantee_id)
    WHERE kind = 'release';
CREATE INDEX guarantee_letters_of_guarantee ON guarantee_letters (guarantee_id, created_at);
