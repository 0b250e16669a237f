-- Bulk imports of credit records (批量导入): one row per file, keyed by the SHA-256 of
-- its bytes. Each batch of lines commits its records, its subjects' scores and
-- last_line (the last line number the batch covered) in one transaction, with the
-- conditional update `WHERE last_line = <what the batch started from>`: after a crash
-- the same file starts again after last_line and stores nothing twice, and two runs of
-- one file at once cannot both commit the same lines. The counts are of lines
-- committed so far, over every run of the file.
CREATE TABLE credit_imports (
    id TEXT PRIMARY KEY,
    file_sha256 TEXT NOT NULL UNIQUE,
    format TEXT NOT NULL,
    last_line INTEGER NOT NULL,
    lines_stored INTEGER NOT NULL,
    lines_rejected INTEGER NOT NULL,
    status TEXT NOT NULL,
    started_by TEXT REFERENCES users(id),
    started_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    CHECK (format IN ('csv', 'ndjson')),
    CHECK (status IN ('running', 'finished')),
    CHECK ((status = 'finished') = (finished_at IS NOT NULL)),
    CHECK (last_line >= 0 AND lines_stored >= 0 AND lines_rejected >= 0)
);
