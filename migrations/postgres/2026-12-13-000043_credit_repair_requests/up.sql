-- Credit repair requests (信用修复申请) beside disputes (异议): a subject asks the credit
-- office to repair a record that was right (the default is paid, the penalty served);
-- granted, the record is cancelled as a credit repair, not as a correction. Both are
-- requests about one record and share the table, its deadline and the rule of one open
-- request per record.
ALTER TABLE credit_disputes ADD COLUMN kind TEXT NOT NULL DEFAULT 'dispute'
    CHECK (kind IN ('dispute', 'repair'));
