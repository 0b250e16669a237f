-- Disputes of credit records (信用异议): a subject contests a record of its archive; the
-- credit office decides by decide_by (business days on the claims' calendar), keeping
-- the record (upheld) or correcting it (a cancelling record, named here). While a
-- dispute is filed its record is shown as disputed. One open dispute per record, held by
-- the unique index, not by a count before the insert.
CREATE TABLE credit_disputes (
    id TEXT PRIMARY KEY,
    record_id TEXT NOT NULL REFERENCES credit_records(id),
    subject_id TEXT NOT NULL REFERENCES credit_subjects(id),
    filed_by TEXT NOT NULL REFERENCES users(id),
    reason TEXT NOT NULL,
    filed_at TIMESTAMP NOT NULL,
    decide_by TIMESTAMP NOT NULL,
    status TEXT NOT NULL,
    decided_by TEXT REFERENCES users(id),
    decided_at TIMESTAMP,
    decision_note TEXT,
    correction_record_id TEXT REFERENCES credit_records(id),
    CHECK (status IN ('filed', 'upheld', 'corrected')),
    CHECK ((status = 'filed') = (decided_at IS NULL)),
    CHECK ((status = 'corrected') = (correction_record_id IS NOT NULL))
);
CREATE UNIQUE INDEX credit_disputes_one_open ON credit_disputes(record_id)
    WHERE status = 'filed';
CREATE INDEX credit_disputes_subject ON credit_disputes(subject_id, filed_at, id);
CREATE INDEX credit_disputes_open ON credit_disputes(decide_by, id) WHERE status = 'filed';
