-- Who looked at a subject's archive (PIPL): one row for every read of an archive by
-- anyone but its subject, written in the transaction of the read. The credit office
-- reads for its own work (credit_office); an issuer reads the applicant's standing while
-- it underwrites one application made to it (underwriting, with that application).
-- looked_by is kept for the audit; the subject is shown the organization, the purpose
-- and the time, never the officer.
CREATE TABLE credit_looks (
    id TEXT PRIMARY KEY,
    subject_id TEXT NOT NULL REFERENCES credit_subjects(id),
    looked_by TEXT NOT NULL REFERENCES users(id),
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    purpose TEXT NOT NULL,
    application_id TEXT REFERENCES applications(id),
    looked_at TIMESTAMP NOT NULL,
    CHECK (purpose IN ('credit_office', 'underwriting')),
    CHECK ((purpose = 'underwriting') = (application_id IS NOT NULL))
);
-- A subject's list, newest first, read in index order.
CREATE INDEX credit_looks_subject ON credit_looks(subject_id, looked_at, id);
