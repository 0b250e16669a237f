-- The credit office's figures over the whole archive (subjects by level, subjects on the
-- serious-dishonesty list, records in force) kept as counters. Triggers move them in
-- the same transaction as the rows they count, whatever writes those rows (the API,
-- imports, expiry, settlements), so the dashboard reads seven rows instead of scanning
-- a million subjects and ten million records.
--
-- One row per figure here: SQLite has one writer at a time, so the triggers update it in
-- place (PostgreSQL appends rows and folds them, see its migration).
CREATE TABLE credit_tallies (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    n BIGINT NOT NULL,
    CHECK (n >= 0)
);

INSERT INTO credit_tallies (name, n)
SELECT 'level:' || l.level, (SELECT count(*) FROM credit_subjects s WHERE s.level = l.level)
FROM (SELECT 'AA' AS level UNION ALL SELECT 'A' UNION ALL SELECT 'B'
      UNION ALL SELECT 'C' UNION ALL SELECT 'D') l;
INSERT INTO credit_tallies (name, n)
SELECT 'dishonest', count(*) FROM credit_subjects WHERE serious_dishonesty_count > 0;
INSERT INTO credit_tallies (name, n)
SELECT 'records_in_force', count(*) FROM credit_records WHERE in_force;

CREATE TRIGGER credit_tallies_subject_insert AFTER INSERT ON credit_subjects
BEGIN
    UPDATE credit_tallies SET n = n + 1 WHERE name = 'level:' || NEW.level;
    UPDATE credit_tallies SET n = n + 1
    WHERE name = 'dishonest' AND NEW.serious_dishonesty_count > 0;
END;

CREATE TRIGGER credit_tallies_subject_update
AFTER UPDATE OF level, serious_dishonesty_count ON credit_subjects
WHEN OLD.level <> NEW.level
  OR (OLD.serious_dishonesty_count > 0) <> (NEW.serious_dishonesty_count > 0)
BEGIN
    UPDATE credit_tallies SET n = n - 1
    WHERE name = 'level:' || OLD.level AND OLD.level <> NEW.level;
    UPDATE credit_tallies SET n = n + 1
    WHERE name = 'level:' || NEW.level AND OLD.level <> NEW.level;
    UPDATE credit_tallies
    SET n = n + (CASE WHEN NEW.serious_dishonesty_count > 0 THEN 1 ELSE -1 END)
    WHERE name = 'dishonest'
      AND (OLD.serious_dishonesty_count > 0) <> (NEW.serious_dishonesty_count > 0);
END;

CREATE TRIGGER credit_tallies_subject_delete AFTER DELETE ON credit_subjects
BEGIN
    UPDATE credit_tallies SET n = n - 1 WHERE name = 'level:' || OLD.level;
    UPDATE credit_tallies SET n = n - 1
    WHERE name = 'dishonest' AND OLD.serious_dishonesty_count > 0;
END;

CREATE TRIGGER credit_tallies_record_insert AFTER INSERT ON credit_records
WHEN NEW.in_force
BEGIN
    UPDATE credit_tallies SET n = n + 1 WHERE name = 'records_in_force';
END;

CREATE TRIGGER credit_tallies_record_update AFTER UPDATE OF in_force ON credit_records
WHEN OLD.in_force <> NEW.in_force
BEGIN
    UPDATE credit_tallies SET n = n + (CASE WHEN NEW.in_force THEN 1 ELSE -1 END)
    WHERE name = 'records_in_force';
END;

CREATE TRIGGER credit_tallies_record_delete AFTER DELETE ON credit_records
WHEN OLD.in_force
BEGIN
    UPDATE credit_tallies SET n = n - 1 WHERE name = 'records_in_force';
END;
