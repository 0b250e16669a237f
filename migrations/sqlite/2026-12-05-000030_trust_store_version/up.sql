-- The version of what the trust store is built from (trust anchors and CRLs), bumped in
-- the transaction that changes it. Every instance compares it with the version its own
-- store was built at before it verifies or signs, so an anchor or CRL registered
-- through one instance takes effect on all of them at their next request.
CREATE TABLE trust_store_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO trust_store_version (id, version) VALUES (1, 0);
