-- Applications saved and not submitted (暂存): the enterprise's own working copy, one
-- per section, seen by nobody else; submitting makes the application and drops it.
CREATE TABLE application_drafts (
    id TEXT PRIMARY KEY,
    enterprise_id TEXT NOT NULL REFERENCES organizations(id),
    section_id TEXT NOT NULL REFERENCES sections(id),
    issuer_id TEXT REFERENCES organizations(id),
    kind TEXT,
    note TEXT,
    created_by TEXT NOT NULL REFERENCES users(id),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (enterprise_id, section_id)
);
