-- The codes the PostgreSQL floor of the check uses (check_floor.pgbench): :n codes for
-- random subjects off the serious-dishonesty list, numbered 1..n, and the sequence that
-- hands them out. Written before the timed run.
CREATE TABLE floor_codes (n BIGINT PRIMARY KEY, code TEXT NOT NULL, subject TEXT NOT NULL);
INSERT INTO floor_codes (n, code, subject)
SELECT row_number() OVER (), md5(random()::text || s.id), s.id
FROM (SELECT id FROM credit_subjects WHERE serious_dishonesty_count = 0
      ORDER BY random() LIMIT :n) s;
INSERT INTO credit_rights_codes (id, subject_id, issued_to, provider_id, issued_at, expires_at)
SELECT code, subject, (SELECT id FROM users LIMIT 1), NULL, now(), now() + interval '1 day'
FROM floor_codes;
CREATE SEQUENCE floor_next;
