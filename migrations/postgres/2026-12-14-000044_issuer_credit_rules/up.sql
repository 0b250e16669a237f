-- An issuer's own rules by the applicant's credit level: the premium discount it gives
-- (percent of its published quote) and whether an application at that level needs a
-- manual review or may be fast-tracked. One row per issuer and level; a level without
-- a row means no discount and a manual review.
CREATE TABLE issuer_credit_rules (
    issuer_id TEXT NOT NULL REFERENCES organizations(id),
    level TEXT NOT NULL,
    discount_percent INTEGER NOT NULL,
    manual_review BOOLEAN NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (issuer_id, level),
    CHECK (level IN ('AA', 'A', 'B', 'C', 'D')),
    CHECK (discount_percent BETWEEN 0 AND 50)
);
