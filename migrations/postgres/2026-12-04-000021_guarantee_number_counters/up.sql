-- Guarantee numbers from a counter row per issuer and issue day (China time), bumped
-- in the issuing transaction: never a count of rows, which a deleted draft lowers, so a
-- number is never handed out twice and parallel issues do not collide.
CREATE TABLE guarantee_number_counters (
    issuer_id TEXT NOT NULL REFERENCES organizations(id),
    -- The issue day as YYYYMMDD.
    issue_day TEXT NOT NULL,
    -- The last sequence number handed out that day.
    last_sequence INTEGER NOT NULL,
    PRIMARY KEY (issuer_id, issue_day)
);
