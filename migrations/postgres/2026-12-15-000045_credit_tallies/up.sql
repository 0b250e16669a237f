-- The credit office's figures over the whole archive (subjects by level, subjects on the
-- serious-dishonesty list, records in force) kept as counters, moved by triggers in the
-- same transaction as the rows they count, whatever writes those rows (the API,
-- imports, expiry, settlements): the dashboard sums a few rows instead of scanning a
-- million subjects and ten million records.
--
-- On PostgreSQL the triggers run once per statement and append the statement's net
-- change as rows of their own instead of updating one row per figure: concurrent
-- writers then never wait on, or deadlock over, the same counter row. A figure is the
-- sum of its rows; `credit_tallies_fold()` (run by the expiry worker and before the
-- dashboard reads) folds them back into one row per figure.
CREATE TABLE credit_tallies (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL,
    n BIGINT NOT NULL
);
CREATE INDEX credit_tallies_name ON credit_tallies (name);

INSERT INTO credit_tallies (name, n)
SELECT 'level:' || l.level, (SELECT count(*) FROM credit_subjects s WHERE s.level = l.level)
FROM unnest(ARRAY['AA', 'A', 'B', 'C', 'D']) AS l(level);
INSERT INTO credit_tallies (name, n)
SELECT 'dishonest', count(*) FROM credit_subjects WHERE serious_dishonesty_count > 0;
INSERT INTO credit_tallies (name, n)
SELECT 'records_in_force', count(*) FROM credit_records WHERE in_force;

-- Folds each figure's rows into one, and writes nothing when every figure has one row
-- already (an idle fold would be a commit, which every instance's page cache notices).
-- Two folds at once are safe: the second skips the rows the first deleted and folds
-- only what it deleted itself.
CREATE FUNCTION credit_tallies_fold() RETURNS void LANGUAGE plpgsql AS $f$
BEGIN
    IF EXISTS (SELECT 1 FROM credit_tallies GROUP BY name HAVING count(*) > 1) THEN
        WITH gone AS (DELETE FROM credit_tallies RETURNING name, n)
        INSERT INTO credit_tallies (name, n) SELECT name, sum(n) FROM gone GROUP BY name;
    END IF;
END
$f$;

CREATE FUNCTION credit_tallies_subjects() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO credit_tallies (name, n)
        SELECT name, sum(k) FROM (
            SELECT 'level:' || level AS name, 1 AS k FROM tally_new
            UNION ALL SELECT 'dishonest', 1 FROM tally_new WHERE serious_dishonesty_count > 0
        ) d GROUP BY name HAVING sum(k) <> 0;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO credit_tallies (name, n)
        SELECT name, sum(k) FROM (
            SELECT 'level:' || level AS name, 1 AS k FROM tally_new
            UNION ALL SELECT 'dishonest', 1 FROM tally_new WHERE serious_dishonesty_count > 0
            UNION ALL SELECT 'level:' || level, -1 FROM tally_old
            UNION ALL SELECT 'dishonest', -1 FROM tally_old WHERE serious_dishonesty_count > 0
        ) d GROUP BY name HAVING sum(k) <> 0;
    ELSE
        INSERT INTO credit_tallies (name, n)
        SELECT name, sum(k) FROM (
            SELECT 'level:' || level AS name, -1 AS k FROM tally_old
            UNION ALL SELECT 'dishonest', -1 FROM tally_old WHERE serious_dishonesty_count > 0
        ) d GROUP BY name HAVING sum(k) <> 0;
    END IF;
    RETURN NULL;
END
$f$;

CREATE FUNCTION credit_tallies_records() RETURNS trigger LANGUAGE plpgsql AS $f$
DECLARE
    moved BIGINT;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT count(*) INTO moved FROM tally_new WHERE in_force;
    ELSIF TG_OP = 'UPDATE' THEN
        SELECT (SELECT count(*) FROM tally_new WHERE in_force)
             - (SELECT count(*) FROM tally_old WHERE in_force) INTO moved;
    ELSE
        SELECT -count(*) INTO moved FROM tally_old WHERE in_force;
    END IF;
    IF moved <> 0 THEN
        INSERT INTO credit_tallies (name, n) VALUES ('records_in_force', moved);
    END IF;
    RETURN NULL;
END
$f$;

CREATE TRIGGER credit_tallies_subject_insert AFTER INSERT ON credit_subjects
    REFERENCING NEW TABLE AS tally_new
    FOR EACH STATEMENT EXECUTE FUNCTION credit_tallies_subjects();
CREATE TRIGGER credit_tallies_subject_update AFTER UPDATE ON credit_subjects
    REFERENCING NEW TABLE AS tally_new OLD TABLE AS tally_old
    FOR EACH STATEMENT EXECUTE FUNCTION credit_tallies_subjects();
CREATE TRIGGER credit_tallies_subject_delete AFTER DELETE ON credit_subjects
    REFERENCING OLD TABLE AS tally_old
    FOR EACH STATEMENT EXECUTE FUNCTION credit_tallies_subjects();
CREATE TRIGGER credit_tallies_record_insert AFTER INSERT ON credit_records
    REFERENCING NEW TABLE AS tally_new
    FOR EACH STATEMENT EXECUTE FUNCTION credit_tallies_records();
CREATE TRIGGER credit_tallies_record_update AFTER UPDATE ON credit_records
    REFERENCING NEW TABLE AS tally_new OLD TABLE AS tally_old
    FOR EACH STATEMENT EXECUTE FUNCTION credit_tallies_records();
CREATE TRIGGER credit_tallies_record_delete AFTER DELETE ON credit_records
    REFERENCING OLD TABLE AS tally_old
    FOR EACH STATEMENT EXECUTE FUNCTION credit_tallies_records();
