-- The deposit-free city's configured lists, each a current row per code and an
-- append-only history of versions (every change by the credit office a new version,
-- its full content as JSON). Seeded from the data files by the application: a code is
-- inserted only when absent. Money in fen.
CREATE TABLE matters (
    code TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    name_zh TEXT NOT NULL,
    name_en TEXT NOT NULL,
    legal_basis TEXT NOT NULL,
    scenario_zh TEXT NOT NULL,
    scenario_en TEXT NOT NULL,
    collecting_body_zh TEXT NOT NULL,
    collecting_body_en TEXT NOT NULL,
    typical_amount_fen BIGINT NOT NULL,
    path TEXT NOT NULL,
    required_level TEXT,
    subject_kind TEXT,
    deposit_ceiling_fen BIGINT,
    commitment_text TEXT,
    write_off_state TEXT NOT NULL,
    write_off_due_on DATE,
    write_off_done_on DATE,
    write_off_evidence TEXT,
    version INTEGER NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    updated_by TEXT REFERENCES users(id),
    CHECK (version >= 1),
    CHECK (typical_amount_fen >= 0),
    CHECK (deposit_ceiling_fen IS NULL OR deposit_ceiling_fen > 0),
    CHECK (path IN ('legal_cleanup', 'cancelled', 'credit_substitution', 'supervision')),
    CHECK ((path = 'credit_substitution') = (required_level IS NOT NULL AND subject_kind IS NOT NULL)),
    CHECK (path = 'credit_substitution' OR (deposit_ceiling_fen IS NULL AND commitment_text IS NULL)),
    CHECK (required_level IS NULL OR required_level IN ('AA', 'A', 'B', 'C', 'D')),
    CHECK (subject_kind IS NULL OR subject_kind IN ('person', 'enterprise')),
    CHECK (write_off_state IN ('planned', 'in_progress', 'done')),
    CHECK ((write_off_state = 'done') = (write_off_done_on IS NOT NULL)),
    CHECK (write_off_state <> 'done' OR write_off_evidence IS NOT NULL)
);

CREATE TABLE matter_versions (
    id TEXT PRIMARY KEY,
    code TEXT NOT NULL REFERENCES matters(code),
    version INTEGER NOT NULL,
    content TEXT NOT NULL,
    changed_at TIMESTAMP NOT NULL,
    changed_by TEXT REFERENCES users(id),
    UNIQUE (code, version),
    CHECK (version >= 1)
);

CREATE TABLE record_categories (
    code TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    name_zh TEXT NOT NULL,
    name_en TEXT NOT NULL,
    dimension TEXT NOT NULL,
    polarity TEXT NOT NULL,
    points INTEGER NOT NULL,
    validity_days INTEGER NOT NULL,
    version INTEGER NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    updated_by TEXT REFERENCES users(id),
    CHECK (version >= 1),
    CHECK (dimension IN ('identity', 'compliance', 'public_interest', 'history')),
    CHECK (polarity IN ('positive', 'negative')),
    CHECK (points BETWEEN 1 AND 1000),
    CHECK (validity_days BETWEEN 1 AND 3650)
);

CREATE TABLE record_category_versions (
    id TEXT PRIMARY KEY,
    code TEXT NOT NULL REFERENCES record_categories(code),
    version INTEGER NOT NULL,
    content TEXT NOT NULL,
    changed_at TIMESTAMP NOT NULL,
    changed_by TEXT REFERENCES users(id),
    UNIQUE (code, version),
    CHECK (version >= 1)
);
