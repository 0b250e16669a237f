-- /readyz writes here: an instance whose database takes reads but refuses writes (a
-- read-only file or data directory, a read-only replica) is not ready, since every
-- sign-in writes.
CREATE TABLE readiness_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    probes BIGINT NOT NULL
);
INSERT INTO readiness_probe (id, probes) VALUES (1, 0);
