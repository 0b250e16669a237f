-- Premium terms (保费标准) an issuer publishes: append-only versions per issuer; the
-- current terms are the highest version, and withdrawing is a new version marked
-- withdrawn (its values empty). Money in fen, the rate in basis points of the bond.
CREATE TABLE premium_terms (
    id TEXT PRIMARY KEY,
    issuer_id TEXT NOT NULL REFERENCES organizations(id),
    version INTEGER NOT NULL,
    withdrawn BOOLEAN NOT NULL,
    rate_bp INTEGER,
    minimum_fen BIGINT,
    maximum_bond_fen BIGINT,
    turnaround_days INTEGER,
    note TEXT,
    published_at TIMESTAMP NOT NULL,
    published_by TEXT NOT NULL REFERENCES users(id),
    UNIQUE (issuer_id, version),
    CHECK (version >= 1),
    CHECK (withdrawn OR (rate_bp IS NOT NULL AND minimum_fen IS NOT NULL AND turnaround_days IS NOT NULL)),
    CHECK (NOT withdrawn OR (rate_bp IS NULL AND minimum_fen IS NULL AND maximum_bond_fen IS NULL AND turnaround_days IS NULL AND note IS NULL)),
    CHECK (rate_bp IS NULL OR rate_bp BETWEEN 0 AND 1000),
    CHECK (minimum_fen IS NULL OR minimum_fen >= 0),
    CHECK (rate_bp IS NULL OR rate_bp > 0 OR minimum_fen > 0),
    CHECK (maximum_bond_fen IS NULL OR maximum_bond_fen > 0),
    CHECK (turnaround_days IS NULL OR turnaround_days BETWEEN 1 AND 30)
);
