-- Credit rights codes (信用权益码), credit lines (授信额度) and the waivers they grant
-- (免押使用), with their settlement.
--
-- A subject's credit line: what its waivers not yet settled hold, in total and per
-- matter, and how many of its waivers stand defaulted and unpaid. A grant locks the
-- subject's line row first (bumping version), reads the subject's level, and adds the
-- amount to both counters in the same transaction; settling takes it off. The ceilings
-- (the level's total line, the matter's deposit ceiling) come from configuration and
-- the catalogue; the database keeps the counters from going below zero.
CREATE TABLE credit_lines (
    subject_id TEXT PRIMARY KEY REFERENCES credit_subjects(id),
    in_use_fen BIGINT NOT NULL,
    defaults_open INTEGER NOT NULL,
    version INTEGER NOT NULL,
    CHECK (in_use_fen >= 0),
    CHECK (defaults_open >= 0)
);

CREATE TABLE credit_line_matters (
    subject_id TEXT NOT NULL REFERENCES credit_lines(subject_id),
    matter TEXT NOT NULL REFERENCES matters(code),
    in_use_fen BIGINT NOT NULL,
    PRIMARY KEY (subject_id, matter),
    CHECK (in_use_fen >= 0)
);

-- An issued code: its random id (hex; the text shown is the id and the expiry sealed
-- with a MAC, rebuilt from this row, never stored), whose it is, and for which provider
-- when the subject chose one. used_at goes from NULL to a time once, by a conditional
-- update: the one check that wins it answers, every later one is "already used".
-- outcome: 'granted', or the reason the check that used it refused.
CREATE TABLE credit_rights_codes (
    id TEXT PRIMARY KEY,
    subject_id TEXT NOT NULL REFERENCES credit_subjects(id),
    issued_to TEXT NOT NULL REFERENCES users(id),
    provider_id TEXT REFERENCES organizations(id),
    issued_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP,
    used_by TEXT REFERENCES organizations(id),
    outcome TEXT,
    CHECK (expires_at > issued_at),
    CHECK ((used_at IS NULL) = (used_by IS NULL)),
    CHECK ((used_at IS NULL) = (outcome IS NULL))
);
CREATE INDEX credit_rights_codes_subject ON credit_rights_codes(subject_id, issued_at);
CREATE INDEX credit_rights_codes_user ON credit_rights_codes(issued_to, issued_at);

-- A waiver (免押): a deposit not taken because a code was granted. state:
--   open      granted, nothing owed yet (the guest is in the room, the patient in care)
--   billed    the provider billed what is owed; due by due_at (the repayment window)
--   paid      settled: the deposit is no longer needed (paid_late: after due_at)
--   defaulted not paid by the window's end; a negative record, the line stays held
--   repaid    paid after a default; the line is free again
-- Every move is a conditional update on the state it leaves.
CREATE TABLE credit_waivers (
    id TEXT PRIMARY KEY,
    code_id TEXT NOT NULL UNIQUE REFERENCES credit_rights_codes(id),
    subject_id TEXT NOT NULL REFERENCES credit_subjects(id),
    provider_id TEXT NOT NULL REFERENCES organizations(id),
    checked_by TEXT NOT NULL REFERENCES users(id),
    matter TEXT NOT NULL REFERENCES matters(code),
    amount_fen BIGINT NOT NULL,
    provider_ref TEXT,
    granted_at TIMESTAMP NOT NULL,
    state TEXT NOT NULL,
    bill_fen BIGINT,
    billed_at TIMESTAMP,
    due_at TIMESTAMP,
    settled_at TIMESTAMP,
    paid_late BOOLEAN NOT NULL,
    record_id TEXT REFERENCES credit_records(id),
    version INTEGER NOT NULL,
    CHECK (amount_fen > 0),
    CHECK (state IN ('open', 'billed', 'paid', 'defaulted', 'repaid')),
    CHECK ((bill_fen IS NULL) = (billed_at IS NULL)),
    CHECK ((due_at IS NULL) = (billed_at IS NULL)),
    CHECK (state NOT IN ('billed', 'defaulted', 'repaid') OR due_at IS NOT NULL),
    CHECK (bill_fen IS NULL OR bill_fen >= 0),
    CHECK ((state IN ('open', 'billed')) = (settled_at IS NULL)),
    CHECK (state <> 'defaulted' OR record_id IS NOT NULL)
);
CREATE INDEX credit_waivers_subject ON credit_waivers(subject_id, granted_at, id);
CREATE INDEX credit_waivers_provider ON credit_waivers(provider_id, granted_at, id);
CREATE INDEX credit_waivers_matter ON credit_waivers(matter, granted_at);
-- The default worker's queue: bills in the order they fall due.
CREATE INDEX credit_waivers_due ON credit_waivers(due_at, id) WHERE state = 'billed';
