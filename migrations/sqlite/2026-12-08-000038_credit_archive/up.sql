-- The credit archive (一人一档, 一企一档): one subject per person or enterprise, an
-- append-only log of its records, and every change of its level.
--
-- A subject row holds what a read needs, kept current by the transaction that adds or
-- cancels a record and by the expiry worker: per dimension the signed sum of the points
-- of its records in force, the score and level they give (catalogue/credit_levels.toml)
-- and how many of its records in force put it on the serious-dishonesty list. A read is
-- one row; nothing scans a subject's records to score it.
--
-- subject_key: for a person the HMAC-SHA256 (hex) of the resident ID number under the
-- server's key, never the number; for an enterprise its USCC. masked_id is what is shown:
-- 371602********1234 for a person, the USCC itself for an enterprise (public register
-- data). organization_id: the enterprise as the exchange knows it, when it does.
CREATE TABLE credit_subjects (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    subject_key TEXT NOT NULL,
    masked_id TEXT NOT NULL,
    name TEXT NOT NULL,
    organization_id TEXT REFERENCES organizations(id),
    score_identity INTEGER NOT NULL,
    score_compliance INTEGER NOT NULL,
    score_public_interest INTEGER NOT NULL,
    score_history INTEGER NOT NULL,
    score INTEGER NOT NULL,
    level TEXT NOT NULL,
    level_since TIMESTAMP NOT NULL,
    serious_dishonesty_count INTEGER NOT NULL,
    version INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (kind, subject_key),
    CHECK (kind IN ('person', 'enterprise')),
    CHECK (kind = 'enterprise' OR organization_id IS NULL),
    CHECK (level IN ('AA', 'A', 'B', 'C', 'D')),
    CHECK (serious_dishonesty_count >= 0),
    CHECK (version >= 1)
);
CREATE INDEX credit_subjects_organization ON credit_subjects(organization_id);

-- The records: content never changes once written. A cancelling record (a correction
-- or a credit repair, 信用修复) names the record it cancels and carries no points of its
-- own. in_force is the one state: true from the start for a record that counts, and it
-- only ever goes true -> false (cancelled, or lapsed at expires_at), by a conditional
-- update (WHERE in_force), so no two instances take a record's points off twice.
-- serious_dishonesty remembers whether the record put its subject on the list when it
-- arrived, so that leaving force takes off exactly what arriving added.
CREATE TABLE credit_records (
    id TEXT PRIMARY KEY,
    subject_id TEXT NOT NULL REFERENCES credit_subjects(id),
    category TEXT NOT NULL REFERENCES record_categories(code),
    dimension TEXT NOT NULL,
    polarity TEXT NOT NULL,
    points INTEGER NOT NULL,
    serious_dishonesty BOOLEAN NOT NULL,
    occurred_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP,
    source_department TEXT NOT NULL,
    source_ref TEXT NOT NULL,
    note TEXT,
    cancels TEXT REFERENCES credit_records(id),
    cancel_reason TEXT,
    recorded_at TIMESTAMP NOT NULL,
    recorded_by TEXT REFERENCES users(id),
    in_force BOOLEAN NOT NULL,
    UNIQUE (source_department, source_ref),
    UNIQUE (cancels),
    CHECK (dimension IN ('identity', 'compliance', 'public_interest', 'history')),
    CHECK (polarity IN ('positive', 'negative')),
    CHECK ((cancels IS NULL) = (cancel_reason IS NULL)),
    CHECK (cancel_reason IS NULL OR cancel_reason IN ('correction', 'credit_repair')),
    CHECK ((cancels IS NULL AND points BETWEEN 1 AND 1000)
        OR (cancels IS NOT NULL AND points = 0 AND NOT in_force AND NOT serious_dishonesty)),
    CHECK (expires_at IS NULL OR expires_at > occurred_at)
);
CREATE INDEX credit_records_subject ON credit_records(subject_id, recorded_at, id);
-- The expiry worker's queue: records in force, in the order they lapse (id breaks
-- ties, so the batch query reads the index in order and sorts nothing; both backends
-- use it for `WHERE in_force AND expires_at <= ?`, generic plans included).
CREATE INDEX credit_records_lapsing ON credit_records(expires_at, id)
    WHERE in_force AND expires_at IS NOT NULL;

CREATE TABLE credit_level_changes (
    id TEXT PRIMARY KEY,
    subject_id TEXT NOT NULL REFERENCES credit_subjects(id),
    from_level TEXT NOT NULL,
    to_level TEXT NOT NULL,
    score INTEGER NOT NULL,
    cause_record_id TEXT REFERENCES credit_records(id),
    changed_at TIMESTAMP NOT NULL,
    CHECK (from_level <> to_level)
);
CREATE INDEX credit_level_changes_subject ON credit_level_changes(subject_id, changed_at);

-- credit_events (the exchange's paid claims before the archive existed) is kept as it
-- stands: nothing writes it any more, and its rows are history a later import may fold
-- into the archive.
