-- Documents an application carries (business licence, qualification certificate, tender
-- file, other) and the evidence a claim carries, content-addressed by SHA-256.
--
-- The bytes: on PostgreSQL in attachment_blobs, keyed by the hash (several instances
-- share the database, not a disk); on SQLite in the data directory
-- (attachments/<first 2 hex>/<hex>), so the table stays empty there. A blob is written
-- before the metadata row that names it and is never rewritten: a row never points at
-- a missing blob, and a blob whose metadata transaction rolled back is harmless garbage.
CREATE TABLE attachment_blobs (
    sha256 TEXT PRIMARY KEY,
    size_bytes BIGINT NOT NULL,
    content BLOB NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- One row an attachment: what the uploader named and what the exchange found it to be.
-- A parent holds one file of the same content at most (the same file sent again is the
-- same attachment).
CREATE TABLE attachments (
    id TEXT PRIMARY KEY,
    parent_kind TEXT NOT NULL,
    parent_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    file_name TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    uploaded_by TEXT NOT NULL REFERENCES users(id),
    uploader_organization_id TEXT NOT NULL REFERENCES organizations(id),
    created_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX attachments_once_per_parent ON attachments(parent_kind, parent_id, sha256);
CREATE INDEX attachments_parent ON attachments(parent_kind, parent_id, created_at);

-- How many attachments each parent holds, moved by the upload's conditional update in
-- its own transaction (`... SET attachment_count = attachment_count + 1 WHERE id = ?
-- AND attachment_count < limit AND status IN (...)`): the per-parent limit holds
-- however many uploads run at once.
ALTER TABLE applications ADD COLUMN attachment_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE claims ADD COLUMN attachment_count INTEGER NOT NULL DEFAULT 0;
