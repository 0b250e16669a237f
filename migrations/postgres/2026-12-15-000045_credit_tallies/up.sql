-- The credit office's figures over the whole archive (subjects by level, subjects on the
-- serious-dishonesty list, records in force) kept as counters. Triggers move them in
-- the same transaction as the rows they count, whatever writes those rows (the API,
-- imports, expiry, settlements), so the dashboard reads seven rows instead of scanning
-- a million subjects and ten million records. The triggers are per statement: an
-- import's statement of a thousand rows moves each counter once.
CREATE TABLE credit_tallies (
    name TEXT PRIMARY KEY NOT NULL,
    n BIGINT NOT NULL,
    CHECK (n >= 0)
);

INSERT INTO credit_tallies (name, n)
SELECT 'level:' || l.level, (SELECT count(*) FROM credit_subjects s WHERE s.level = l.level)
FROM unnest(ARRAY['AA', 'A', 'B', 'C', 'D']) AS l(level);
INSERT INTO credit_tallies (name, n)
SELECT 'dishonest', count(*) FROM credit_subjects WHERE serious_dishonesty_count > 0;
INSERT INTO credit_tallies (name, n)
SELECT 'records_in_force', count(*) FROM credit_records WHERE in_force;

-- Adds the net change of each counter; only counters that move are touched.
CREATE FUNCTION credit_tallies_add(changes JSONB) RETURNS void LANGUAGE sql AS $f$
    UPDATE credit_tallies t SET n = t.n + (c.value)::BIGINT
    FROM jsonb_each_text(changes) c
    WHERE t.name = c.key AND (c.value)::BIGINT <> 0;
$f$;

CREATE FUNCTION credit_tallies_subjects() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM credit_tallies_add(coalesce((
            SELECT jsonb_object_agg(name, k) FROM (
                SELECT name, sum(k) AS k FROM (
                    SELECT 'level:' || level AS name, 1 AS k FROM tally_new
                    UNION ALL SELECT 'dishonest', 1 FROM tally_new
                              WHERE serious_dishonesty_count > 0) d
                GROUP BY name) s), '{}'));
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM credit_tallies_add(coalesce((
            SELECT jsonb_object_agg(name, k) FROM (
                SELECT name, sum(k) AS k FROM (
                    SELECT 'level:' || level AS name, 1 AS k FROM tally_new
                    UNION ALL SELECT 'dishonest', 1 FROM tally_new
                              WHERE serious_dishonesty_count > 0
                    UNION ALL SELECT 'level:' || level, -1 FROM tally_old
                    UNION ALL SELECT 'dishonest', -1 FROM tally_old
                              WHERE serious_dishonesty_count > 0) d
                GROUP BY name) s), '{}'));
    ELSE
        PERFORM credit_tallies_add(coalesce((
            SELECT jsonb_object_agg(name, k) FROM (
                SELECT name, sum(k) AS k FROM (
                    SELECT 'level:' || level AS name, -1 AS k FROM tally_old
                    UNION ALL SELECT 'dishonest', -1 FROM tally_old
                              WHERE serious_dishonesty_count > 0) d
                GROUP BY name) s), '{}'));
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
        UPDATE credit_tallies SET n = n + moved WHERE name = 'records_in_force';
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
