#!/usr/bin/env bash
# The deposit-free city at scale (issue 12, "Scale"; not run in CI). On a fresh database
# (SQLite, or PostgreSQL with SCALE_POSTGRES_URL) it loads 1,000,000 credit subjects and
# 10,000,000 records, starts the release
# server on it (`baohan demo`, which adds the demo accounts) and runs wrk against, in
# one run:
#
#   GET  /healthz                         the reference: the server's raw request rate
#   GET  /api/v1/auth/me                  a resident's token resolved and nothing else: what
#                                         any signed-in request costs at least (residents in turn)
#   GET  /api/v1/credit/me                a resident's own archive (residents in turn)
#   GET  /api/v1/credit/subjects/{id}     the credit office's read of one subject by id,
#                                         a random one of the million (logs a look: a write)
#   POST /api/v1/credit/lookup            the credit office's read by resident ID (the
#                                         residents in turn; hashes the number, logs a look)
#   POST /api/v1/credit/me/rights-codes   residents issuing codes (in turn); every code
#                                         answered is kept for the next run
#   POST /api/v1/credit/checks            the hotel's system (an API token) checking those
#                                         codes, each once, for a hotel room, 0.01 yuan
#   GET  /healthz                         again; the reference is the mean of the two
#
# then, with no server in front, the database's own floor under the check: one granted
# check's statements, prepared once, on a copy of the database (SQLite, one writer, from
# Python's sqlite3 module) or on the database itself (PostgreSQL, pgbench -M prepared
# with as many clients as the server's pool),
#
# and prints each rate as a ratio to /healthz, p50/p90/p99/max, errors and non-2xx, how
# the checks were answered (granted, or refused and why), the server's peak memory
# (VmHWM), the load from other processes, and the goal of issue 12 (p99 under 10 ms and
# at least 0.3x /healthz for the check and the archive reads).
#
# How the database is filled: `baohan import` of a small CSV (10 records for each
# resident who acts in the load; it also migrates and seeds the catalogue), then plain
# SQL in the sqlite3 shell (psql on PostgreSQL: generate_series, the subjects before the
# records since the foreign keys are checked, then VACUUM ANALYZE as autovacuum would
# soon do): a recursive CTE writes the records (10 per subject, the
# catalogue's categories, points and validity; one in ten lapsed years ago, about 2% of
# subjects with a judgment-defaulter record in force), then each subject's dimension
# sums, score, level and serious-dishonesty count are computed from its records in force
# with one aggregate, and a level change is written for each subject away from the base
# level. Filler subjects are persons whose identity HMAC is random hex (nobody signs in
# as them). Ids are UUID-shaped and in insertion order. No ANALYZE on SQLite (the server
# runs none either).
#
# The residents who act are real accounts: the demo's `resident` and more made through
# the operator's API (POST /api/v1/users, role person, with a resident ID). The
# rights-code check is rate limited per client address; the run sets
# BAOHAN_RATE_LIMIT_RIGHTS_CODE_PER_MINUTE (and the sign-in limits) out of reach, since
# every request comes from 127.0.0.1.
#
# It does not build: it runs $SCALE_BIN (default target/release/baohan), copied into
# its work directory first so that a build during the run cannot swap it.
#
# Usage: scripts/bench-scale.sh
# Settings (environment):
#   SCALE_BIN=target/release/baohan
#   SCALE_SUBJECTS=1000000 SCALE_RECORDS_PER_SUBJECT=10
#   SCALE_RESIDENTS=8        residents who act (the demo's one, then made through the API)
#   SCALE_DURATION=10s       each wrk run but the code issuing
#   SCALE_ISSUE_DURATION=20s the code issuing (the codes the check run uses: valid 5 min)
#   SCALE_THREADS=2 SCALE_CONNECTIONS=16
#   SCALE_PORT=18090 SCALE_LOG=warn
#   SCALE_CACHE=DIR          keep the filled data directory (database and master key,
#                            before the server first ran on it) in DIR, and start from
#                            that copy when DIR holds one instead of filling again
#   SCALE_WORK=DIR           work directory (default a new temporary one, removed at exit)
#   SCALE_PROFILE_DIR=DIR    record each load with `perf record -g` into DIR/NAME.perf.data
#   SCALE_FLOOR_CHECKS=5000  checks of the database's floor (see below)
#   SCALE_POSTGRES_URL       a PostgreSQL server's admin URL (say
#                            postgres://postgres@127.0.0.1:5432/postgres): the run makes a
#                            database of its own there, fills it with generate_series and
#                            drops it on exit (SCALE_CACHE is for SQLite only); unset: SQLite
set -euo pipefail
cd "$(dirname "$0")/.."

SUBJECTS=${SCALE_SUBJECTS:-1000000}
PER=${SCALE_RECORDS_PER_SUBJECT:-10}
RESIDENTS=${SCALE_RESIDENTS:-8}
DURATION=${SCALE_DURATION:-10s}
ISSUE_DURATION=${SCALE_ISSUE_DURATION:-20s}
THREADS=${SCALE_THREADS:-2}
CONNECTIONS=${SCALE_CONNECTIONS:-16}
PORT=${SCALE_PORT:-18090}
LOG=${SCALE_LOG:-warn}
CACHE=${SCALE_CACHE:-}
PROFILE_DIR=${SCALE_PROFILE_DIR:-}
FLOOR_CHECKS=${SCALE_FLOOR_CHECKS:-5000}
FLOOR_CLIENTS=8
BIN_SOURCE=${SCALE_BIN:-target/release/baohan}
PG_ADMIN=${SCALE_POSTGRES_URL:-}
BASE="http://127.0.0.1:$PORT"

for n in "$SUBJECTS" "$PER" "$RESIDENTS"; do
  case "$n" in '' | *[!0-9]* | 0) echo "SCALE_SUBJECTS, SCALE_RECORDS_PER_SUBJECT and SCALE_RESIDENTS must be positive numbers" >&2; exit 2 ;; esac
done
if [ "$RESIDENTS" -gt 900 ]; then echo "SCALE_RESIDENTS: at most 900" >&2; exit 2; fi
for tool in wrk curl sqlite3 python3 ${PG_ADMIN:+psql pgbench}; do
  command -v "$tool" >/dev/null || { echo "bench-scale.sh: $tool is missing" >&2; exit 2; }
done
[ -x "$BIN_SOURCE" ] || { echo "bench-scale.sh: no binary at $BIN_SOURCE (build it: cargo build --release)" >&2; exit 2; }

TMP=${SCALE_WORK:-$(mktemp -d)}
KEEP_TMP=${SCALE_WORK:+1}
mkdir -p "$TMP"
SCRIPT=bench-scale.sh
. scripts/lib/server.sh
cleanup() {
  local rc=$?
  stop_and_drop "$rc" 100
  [ -n "$KEEP_TMP" ] || rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if curl -s --max-time 1 -o /dev/null "$BASE/healthz"; then
  echo "bench-scale.sh: something already listens on 127.0.0.1:$PORT (set SCALE_PORT)" >&2
  exit 2
fi

BIN="$TMP/baohan"
cp "$BIN_SOURCE" "$BIN"
echo "== $("$BIN" --version), binary of $(date -u -r "$BIN_SOURCE" '+%Y-%m-%d %H:%M UTC') =="

# others: the load average and the busiest processes over one second (%CPU, 100 = one
# core), on one line, for the record.
others() {
  local busiest
  busiest=$(top -b -n 2 -d 1 -w 200 | awk '/^top -/ { n++ }
    n == 2 && /^ *[0-9]+ / && $12 != "top" && $9 + 0 >= 1 { printf "%s%s %s%%", sep, $12, $9; sep = ", " }
    END { print "" }' | cut -d, -f1-8)
  echo "load average $(cut -d' ' -f1-3 /proc/loadavg); busiest over 1 s: ${busiest:-none}"
}
echo "== machine: $(nproc) CPUs; before the run: =="
others | tee "$TMP/others.before"

DATA="$TMP/data"
DB="$DATA/baohan.db"
rm -rf "$DATA"
mkdir -p "$DATA"
if [ -n "$PG_ADMIN" ]; then
  psql "$PG_ADMIN" -qtAc 'SELECT 1' >/dev/null ||
    { echo "bench-scale.sh: cannot reach PostgreSQL at SCALE_POSTGRES_URL" >&2; exit 2; }
  make_pg_database baohan_scale
  BACKEND="PostgreSQL $(psql "$PG_ADMIN" -qtAc 'SHOW server_version')"
  CACHE=
else
  DATABASE_URL="sqlite://$DB"
  BACKEND="SQLite"
fi
export BAOHAN_DATABASE_URL="$DATABASE_URL" BAOHAN_DATA_DIR="$DATA" BAOHAN_LOG="$LOG" RUST_LOG="$LOG"

# The residents who act: the demo's (its resident ID is fixed in src/services/demo.rs),
# then made-up ones with correct check digits. "username resident_id" per line.
python3 - "$RESIDENTS" >"$TMP/residents.txt" <<'EOF'
import datetime, sys
RW = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
RC = "10X98765432"
def rid(body):
    return body + RC[sum(int(c) * w for c, w in zip(body, RW)) % 11]
print("resident", rid("37160219900307002"))
for n in range(1, int(sys.argv[1])):
    born = datetime.date(1980, 1, 1) + datetime.timedelta(days=37 * n)
    print(f"scale-resident-{n:03d}", rid("371602" + born.strftime("%Y%m%d") + f"{n % 900 + 100:03d}"))
EOF

# Ten records for each resident, standing at level A (600 + 20 + 15 + 10 + 30 + 5 - 10 -
# 30 = 640), one of them lapsed.
python3 - "$TMP/residents.txt" >"$TMP/residents.csv" <<'EOF'
import datetime, sys
day = (datetime.datetime.utcnow() + datetime.timedelta(hours=8) - datetime.timedelta(days=2)).date()
mix = ["identity_verified", "volunteer_service", "volunteer_service", "volunteer_service",
       "blood_donation", "tax_grade_a", "guarantee_fulfilled", "utility_arrears",
       "administrative_penalty", "administrative_penalty"]
print("subject_type,subject_id,subject_name,category,polarity,points,occurred_at,expires_at,source_department,source_ref,note")
for n, line in enumerate(open(sys.argv[1])):
    _, resident_id = line.split()
    for k, category in enumerate(mix):
        if k == 9:
            occurred, expires = "2019-05-01", "2020-05-01"
        else:
            occurred, expires = (day - datetime.timedelta(days=10 * k)).isoformat(), ""
        print(f"person,{resident_id},居民{n},{category},,,{occurred},{expires},省公共信用信息平台,RES-{n:03d}-{k},")
EOF

# fill_sql: the SQL that writes the filler records, then their subjects, then their level
# changes (three statements, each in its own transaction, timed one by one).
records_sql() {
  cat <<EOF
PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
PRAGMA cache_size = -600000;
PRAGMA temp_store = MEMORY;
BEGIN;
CREATE TEMP TABLE mix (k INTEGER PRIMARY KEY, code TEXT NOT NULL);
INSERT INTO mix VALUES (0, 'identity_verified'), (1, 'tax_grade_a'), (2, 'volunteer_service'),
  (3, 'administrative_penalty'), (4, 'blood_donation'), (5, 'utility_arrears'),
  (6, 'guarantee_fulfilled'), (7, 'volunteer_service'), (8, 'administrative_penalty'),
  (9, 'tax_grade_a'), (10, 'administrative_penalty'), (11, 'utility_arrears');
-- Today's midnight in China time, as UTC (what a date-only record time is stored as).
CREATE TEMP TABLE clock AS SELECT date('now', '+8 hours', '-1 day') || ' 16:00:00' AS midnight;
-- Record i belongs to subject i / $PER. Its category comes from the mix by subject and
-- position; the last record of each subject lapsed years ago; every 53rd subject has a
-- judgment-defaulter record in force (the serious-dishonesty list). Records in force
-- occurred 1 to 300 days ago, so none lapses during the run.
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $SUBJECTS * $PER - 1),
g AS (
  SELECT i, i / $PER AS s, i % $PER AS k,
    CASE WHEN (i / $PER) % 53 = 0 AND i % $PER = 5 THEN 'judgment_defaulter'
         ELSE (SELECT code FROM mix
               WHERE mix.k = ((i % $PER) * (1 + (i / $PER) % 5) + (i / $PER) * 3 + (i / $PER) / 11) % 12)
    END AS code,
    i % $PER = $PER - 1 AS lapsed
  FROM n
),
t AS (
  SELECT g.*, c.dimension, c.polarity, c.points, c.validity_days,
    CASE WHEN lapsed THEN datetime('2019-05-01 16:00:00', printf('-%d days', (i * 7919) % 300))
         ELSE datetime((SELECT midnight FROM clock), printf('-%d days', 1 + (i * 7919) % 300)) END AS occurred
  FROM g CROSS JOIN record_categories c ON c.code = g.code
)
INSERT INTO credit_records (id, subject_id, category, dimension, polarity, points,
  serious_dishonesty, occurred_at, expires_at, source_department, source_ref, note, cancels,
  cancel_reason, recorded_at, recorded_by, in_force)
SELECT printf('00000000-0000-4000-9000-%012x', i), printf('00000000-0000-4000-8000-%012x', s),
  code, dimension, polarity, points, NOT lapsed AND code = 'judgment_defaulter',
  occurred, datetime(occurred, printf('+%d days', validity_days)),
  '省公共信用信息平台', printf('SCALE-%09d', i), NULL, NULL, NULL,
  datetime(occurred, '+1 hour'), NULL, NOT lapsed
FROM t;
COMMIT;
EOF
}
subjects_sql() {
  cat <<EOF
PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
PRAGMA cache_size = -600000;
BEGIN;
-- Each filler subject from its records: per dimension the signed points of those in
-- force, the score within 0..1000 from the base 600, the level by the thresholds of
-- catalogue/credit_levels.toml (D on the serious-dishonesty list).
INSERT INTO credit_subjects (id, kind, subject_key, masked_id, name, organization_id,
  score_identity, score_compliance, score_public_interest, score_history, score, level,
  level_since, serious_dishonesty_count, version, created_at, updated_at)
SELECT subject_id, 'person', lower(hex(randomblob(32))),
  printf('371602********%04d', s % 10000), printf('居民%07d', s), NULL,
  ident, comp, pub, hist, score,
  CASE WHEN serious > 0 THEN 'D' WHEN score >= 700 THEN 'AA' WHEN score >= 600 THEN 'A'
       WHEN score >= 500 THEN 'B' WHEN score >= 400 THEN 'C' ELSE 'D' END,
  CASE WHEN serious > 0 OR score < 600 OR score >= 700 THEN updated ELSE created END,
  serious, 1, created, updated
FROM (
  SELECT *, max(0, min(1000, 600 + ident + comp + pub + hist)) AS score
  FROM (
    SELECT subject_id, CAST(substr(min(source_ref), 7) AS INTEGER) / $PER AS s,
      sum(CASE WHEN in_force AND dimension = 'identity' THEN (CASE polarity WHEN 'positive' THEN points ELSE -points END) ELSE 0 END) AS ident,
      sum(CASE WHEN in_force AND dimension = 'compliance' THEN (CASE polarity WHEN 'positive' THEN points ELSE -points END) ELSE 0 END) AS comp,
      sum(CASE WHEN in_force AND dimension = 'public_interest' THEN (CASE polarity WHEN 'positive' THEN points ELSE -points END) ELSE 0 END) AS pub,
      sum(CASE WHEN in_force AND dimension = 'history' THEN (CASE polarity WHEN 'positive' THEN points ELSE -points END) ELSE 0 END) AS hist,
      sum(serious_dishonesty) AS serious, min(recorded_at) AS created, max(recorded_at) AS updated
    FROM credit_records
    WHERE subject_id BETWEEN '00000000-0000-4000-8000-000000000000' AND '00000000-0000-4000-8000-ffffffffffff'
    GROUP BY subject_id
  )
);
COMMIT;
EOF
}
changes_sql() {
  cat <<EOF
PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
PRAGMA cache_size = -600000;
BEGIN;
-- Every filler subject away from the base level (A) got there with its newest record.
INSERT INTO credit_level_changes (id, subject_id, from_level, to_level, score, cause_record_id, changed_at)
SELECT printf('00000000-0000-4000-a000-%s', substr(s.id, 25)), s.id, 'A', s.level, s.score,
  (SELECT r.id FROM credit_records r WHERE r.subject_id = s.id AND r.in_force
   ORDER BY r.recorded_at DESC, r.id DESC LIMIT 1),
  s.level_since
FROM credit_subjects s
WHERE s.id BETWEEN '00000000-0000-4000-8000-000000000000' AND '00000000-0000-4000-8000-ffffffffffff'
  AND s.level <> 'A';
COMMIT;
PRAGMA journal_mode = WAL;
EOF
}

# The same data on PostgreSQL, where the foreign keys hold at every insert: the records'
# fields are made once into a temporary table, the subjects aggregated from it first,
# then the records copied from it. Same formulas as above.
pg_gen_sql() {
  cat <<EOF
SET client_min_messages = warning;
CREATE UNLOGGED TABLE scale_gen AS
WITH g AS (
  SELECT i, i / $PER AS s,
    CASE WHEN (i / $PER) % 53 = 0 AND i % $PER = 5 THEN 'judgment_defaulter'
         ELSE (ARRAY['identity_verified', 'tax_grade_a', 'volunteer_service',
                     'administrative_penalty', 'blood_donation', 'utility_arrears',
                     'guarantee_fulfilled', 'volunteer_service', 'administrative_penalty',
                     'tax_grade_a', 'administrative_penalty', 'utility_arrears'])
              [((i % $PER) * (1 + (i / $PER) % 5) + (i / $PER) * 3 + (i / $PER) / 11) % 12 + 1]
    END AS code,
    i % $PER = $PER - 1 AS lapsed
  FROM generate_series(0::bigint, $SUBJECTS::bigint * $PER - 1) AS i
)
SELECT g.i, g.s, g.code, c.dimension, c.polarity, c.points, c.validity_days, g.lapsed,
  CASE WHEN g.lapsed THEN timestamp '2019-05-01 16:00:00' - make_interval(days => ((g.i * 7919) % 300)::int)
       ELSE (((now() AT TIME ZONE 'UTC') + interval '8 hours')::date - 1 + time '16:00')
            - make_interval(days => (1 + (g.i * 7919) % 300)::int) END AS occurred
FROM g JOIN record_categories c ON c.code = g.code;
EOF
}
pg_subjects_sql() {
  cat <<EOF
SET client_min_messages = warning;
SET synchronous_commit = off;
INSERT INTO credit_subjects (id, kind, subject_key, masked_id, name, organization_id,
  score_identity, score_compliance, score_public_interest, score_history, score, level,
  level_since, serious_dishonesty_count, version, created_at, updated_at)
SELECT '00000000-0000-4000-8000-' || lpad(to_hex(s), 12, '0'), 'person',
  md5(random()::text) || md5(random()::text),
  '371602********' || lpad((s % 10000)::text, 4, '0'), '居民' || lpad(s::text, 7, '0'), NULL,
  ident, comp, pub, hist, score,
  CASE WHEN serious > 0 THEN 'D' WHEN score >= 700 THEN 'AA' WHEN score >= 600 THEN 'A'
       WHEN score >= 500 THEN 'B' WHEN score >= 400 THEN 'C' ELSE 'D' END,
  CASE WHEN serious > 0 OR score < 600 OR score >= 700 THEN updated ELSE created END,
  serious, 1, created, updated
FROM (
  SELECT *, greatest(0, least(1000, 600 + ident + comp + pub + hist)) AS score
  FROM (
    SELECT s,
      coalesce(sum(CASE WHEN polarity = 'positive' THEN points ELSE -points END) FILTER (WHERE NOT lapsed AND dimension = 'identity'), 0) AS ident,
      coalesce(sum(CASE WHEN polarity = 'positive' THEN points ELSE -points END) FILTER (WHERE NOT lapsed AND dimension = 'compliance'), 0) AS comp,
      coalesce(sum(CASE WHEN polarity = 'positive' THEN points ELSE -points END) FILTER (WHERE NOT lapsed AND dimension = 'public_interest'), 0) AS pub,
      coalesce(sum(CASE WHEN polarity = 'positive' THEN points ELSE -points END) FILTER (WHERE NOT lapsed AND dimension = 'history'), 0) AS hist,
      count(*) FILTER (WHERE NOT lapsed AND code = 'judgment_defaulter') AS serious,
      min(occurred) + interval '1 hour' AS created, max(occurred) + interval '1 hour' AS updated
    FROM scale_gen GROUP BY s
  ) AS sums
) AS scored
ORDER BY s;
EOF
}
pg_records_sql() {
  cat <<EOF
SET client_min_messages = warning;
SET synchronous_commit = off;
INSERT INTO credit_records (id, subject_id, category, dimension, polarity, points,
  serious_dishonesty, occurred_at, expires_at, source_department, source_ref, note, cancels,
  cancel_reason, recorded_at, recorded_by, in_force)
SELECT '00000000-0000-4000-9000-' || lpad(to_hex(i), 12, '0'),
  '00000000-0000-4000-8000-' || lpad(to_hex(s), 12, '0'),
  code, dimension, polarity, points, NOT lapsed AND code = 'judgment_defaulter',
  occurred, occurred + make_interval(days => validity_days),
  '省公共信用信息平台', 'SCALE-' || lpad(i::text, 9, '0'), NULL, NULL, NULL,
  occurred + interval '1 hour', NULL, NOT lapsed
FROM scale_gen ORDER BY i;
DROP TABLE scale_gen;
EOF
}
pg_changes_sql() {
  cat <<EOF
SET client_min_messages = warning;
SET synchronous_commit = off;
INSERT INTO credit_level_changes (id, subject_id, from_level, to_level, score, cause_record_id, changed_at)
SELECT '00000000-0000-4000-a000-' || substr(s.id, 25), s.id, 'A', s.level, s.score,
  (SELECT r.id FROM credit_records r WHERE r.subject_id = s.id AND r.in_force
   ORDER BY r.recorded_at DESC, r.id DESC LIMIT 1),
  s.level_since
FROM credit_subjects s
WHERE s.id BETWEEN '00000000-0000-4000-8000-000000000000' AND '00000000-0000-4000-8000-ffffffffffff'
  AND s.level <> 'A';
-- What autovacuum would do soon after a load this size.
VACUUM ANALYZE;
EOF
}

# secs CMD...: runs it, prints its wall time in seconds on stdout, its output to stderr.
secs() {
  local start end
  start=$(date +%s.%N)
  "$@" >&2 || return 1
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }'
}
sql() { sqlite3 -bail "$DB" >/dev/null; }
pg() { psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -q >/dev/null; }

if [ -n "$CACHE" ] && [ -f "$CACHE/baohan.db" ] && [ -f "$CACHE/master.key" ] &&
   [ -f "$CACHE/filled" ] && [ "$(cat "$CACHE/filled")" = "$SUBJECTS $PER $RESIDENTS" ]; then
  echo "== the filled database from SCALE_CACHE ($(cat "$CACHE/fill.times")) =="
  cp "$CACHE/baohan.db" "$CACHE/master.key" "$DATA/"
  FILL_TIMES=$(cat "$CACHE/fill.times")
elif [ -n "$PG_ADMIN" ]; then
  echo "== filling $BACKEND: import of $RESIDENTS residents' records, then $SUBJECTS subjects x $PER records by SQL =="
  t_import=$(secs "$BIN" import "$TMP/residents.csv")
  t_gen=$(secs pg < <(pg_gen_sql))
  echo "generated: ${t_gen}s"
  t_subjects=$(secs pg < <(pg_subjects_sql))
  echo "subjects: ${t_subjects}s"
  t_records=$(secs pg < <(pg_records_sql))
  echo "records: ${t_records}s"
  t_changes=$(secs pg < <(pg_changes_sql))
  FILL_TIMES="import ${t_import}s, generated ${t_gen}s, subjects ${t_subjects}s, records ${t_records}s, level changes and VACUUM ANALYZE ${t_changes}s"
  echo "$FILL_TIMES"
else
  echo "== filling: import of $RESIDENTS residents' records, then $SUBJECTS subjects x $PER records by SQL =="
  t_import=$(secs "$BIN" import "$TMP/residents.csv")
  t_records=$(secs sql < <(records_sql))
  echo "records: ${t_records}s"
  t_subjects=$(secs sql < <(subjects_sql))
  echo "subjects: ${t_subjects}s"
  t_changes=$(secs sql < <(changes_sql))
  FILL_TIMES="import ${t_import}s, records ${t_records}s, subjects ${t_subjects}s, level changes ${t_changes}s"
  echo "$FILL_TIMES"
  if [ -n "$CACHE" ]; then
    mkdir -p "$CACHE"
    cp "$DB" "$DATA/master.key" "$CACHE/"
    echo "$FILL_TIMES" >"$CACHE/fill.times"
    echo "$SUBJECTS $PER $RESIDENTS" >"$CACHE/filled"
  fi
fi
if [ -n "$PG_ADMIN" ]; then
  psql "$DATABASE_URL" -qtA -c "SELECT 'subjects ' || count(*) FROM credit_subjects" \
    -c "SELECT 'records ' || count(*) || ', in force ' || count(*) FILTER (WHERE in_force) FROM credit_records" \
    -c "SELECT 'levels ' || string_agg(level || ' ' || n, ', ' ORDER BY level) FROM
          (SELECT level, count(*) AS n FROM credit_subjects GROUP BY level) AS l" \
    -c "SELECT 'level changes ' || count(*) FROM credit_level_changes" | tee "$TMP/counts.txt"
  DB_MB=$(psql "$DATABASE_URL" -qtAc "SELECT pg_database_size(current_database()) / 1048576")
else
  sqlite3 "$DB" "SELECT 'subjects ' || count(*) FROM credit_subjects;
    SELECT 'records ' || count(*) || ', in force ' || sum(in_force) FROM credit_records;
    SELECT 'levels ' || group_concat(level || ' ' || n, ', ') FROM
      (SELECT level, count(*) AS n FROM credit_subjects GROUP BY level ORDER BY level);
    SELECT 'level changes ' || count(*) FROM credit_level_changes;" | tee "$TMP/counts.txt"
  DB_MB=$(( $(stat -c %s "$DB") / 1048576 ))
fi
echo "database size: $DB_MB MiB"

echo "== server: baohan demo on 127.0.0.1:$PORT, $BACKEND, log=$LOG =="
BAOHAN_LISTEN="127.0.0.1:$PORT" BAOHAN_PUBLIC_BASE_URL="$BASE" BAOHAN_CERTS_DIR="$TMP/certs" \
  BAOHAN_RATE_LIMIT_RIGHTS_CODE_PER_MINUTE=1000000000 \
  BAOHAN_RATE_LIMIT_LOGIN_PER_MINUTE=1000000000 \
  BAOHAN_RATE_LIMIT_LOGIN_PER_ACCOUNT_PER_MINUTE=1000000000 \
  BAOHAN_MAIL_TRANSPORT=file \
  "$BIN" demo >"$TMP/server.log" 2>&1 &
SERVER_PID=$!
started=$(date +%s)
for _ in $(seq 600); do
  curl -s --max-time 1 -o /dev/null "$BASE/healthz" && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "the server exited" >&2; exit 1; }
  sleep 0.2
done
curl -sf --max-time 2 -o /dev/null "$BASE/healthz"
echo "serving after $(( $(date +%s) - started ))s"

echo "== setup through the API: residents, sign-ins, the hotel's API token, one check =="
python3 - "$BASE" "$TMP" <<'EOF'
import json, sys

sys.path.insert(0, "scripts/lib")
from bench import Api, PASSWORD

base, tmp = sys.argv[1], sys.argv[2]
call = Api(base, timeout=60).call

def login(user, password=PASSWORD):
    return call("POST", "/api/v1/auth/login", body={"username": user, "password": password})["token"]

operator = login("operator")
orgs = call("GET", "/api/v1/organizations?per_page=100", operator)
register = next(o for o in orgs if o["kind"] == "operator")
residents = [line.split() for line in open(f"{tmp}/residents.txt")]
tokens = []
for n, (username, resident_id) in enumerate(residents):
    password = PASSWORD
    if username != "resident":
        password = f"scale-password-{n:03d}"
        call("POST", "/api/v1/users", operator, {
            "organization_id": register["id"], "username": username,
            "display_name": f"居民{n}", "role": "person", "password": password,
            "resident_id": resident_id})
    token = login(username, password)
    archive = call("GET", "/api/v1/credit/me", token)
    if archive["subject"]["level"] != "A" or len(archive["records"]) != 10:
        sys.exit(f"{username}: level {archive['subject']['level']}, "
                 f"{len(archive['records'])} records (expected A and 10)")
    tokens.append(token)

hotel = call("POST", "/api/v1/auth/tokens", login("hotel"), {"name": "PMS (scale benchmark)"})["token"]
# One code issued and checked before loading: granted, as the loads expect.
code = call("POST", "/api/v1/credit/me/rights-codes", tokens[0], {})["code"]
answer = call("POST", "/api/v1/credit/checks", hotel,
              {"code": code, "matter": "hotel_room", "amount": "0.01"})
if answer["decision"] != "granted":
    sys.exit(f"the first check was not granted: {answer}")
# The office's read by id: one filler subject must be found.
call("GET", "/api/v1/credit/subjects/00000000-0000-4000-8000-000000000001", operator)

def lua_list(name, items):
    return f"local {name} = {{\n" + "".join(f"  {json.dumps(i)},\n" for i in items) + "}\n"
with open(f"{tmp}/tokens.lua", "w") as f:
    f.write(lua_list("tokens", tokens))
    f.write(lua_list("lookups", [json.dumps({"subject_type": "person", "subject_id": r})
                                 for _, r in residents]))
    f.write(f"local operator = {json.dumps(operator)}\nlocal hotel = {json.dumps(hotel)}\n")
print(f"{len(residents)} residents at level A with 10 records each; the hotel's token made; one check granted")
EOF

# The wrk scripts. `done` prints one machine-readable RESULT line that the summary reads.
cat >"$TMP/report.lua" <<'EOF'
function report_result(summary, latency)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d errors=%d non2xx=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect + e.read + e.write + e.timeout, e.status))
end
if not done then
  done = function(summary, latency, requests) report_result(summary, latency) end
end
EOF
cat "$TMP/report.lua" >"$TMP/healthz.lua"
# whoami.lua: residents ask who they are, in turn.
{
  cat "$TMP/tokens.lua"
  cat <<'EOF'
local i = 0
request = function()
  i = i % #tokens + 1
  return wrk.format("GET", "/api/v1/auth/me", { ["Authorization"] = "Bearer " .. tokens[i] })
end
EOF
  cat "$TMP/report.lua"
} >"$TMP/whoami.lua"
# me.lua: residents read their own archives in turn.
{
  cat "$TMP/tokens.lua"
  cat <<'EOF'
local i = 0
request = function()
  i = i % #tokens + 1
  return wrk.format("GET", "/api/v1/credit/me", { ["Authorization"] = "Bearer " .. tokens[i] })
end
EOF
  cat "$TMP/report.lua"
} >"$TMP/me.lua"
# office.lua: the credit office reads a random subject of the filler by id.
{
  cat "$TMP/tokens.lua"
  cat <<EOF
local subjects = $SUBJECTS
EOF
  cat <<'EOF'
local headers = { ["Authorization"] = "Bearer " .. operator }
local count = 0
setup = function(thread) count = count + 1; thread:set("tid", count) end
init = function(args) math.randomseed(os.time() * 7919 + tid) end
request = function()
  local id = string.format("00000000-0000-4000-8000-%012x", math.random(0, subjects - 1))
  return wrk.format("GET", "/api/v1/credit/subjects/" .. id, headers)
end
EOF
  cat "$TMP/report.lua"
} >"$TMP/office.lua"
# lookup.lua: the credit office reads the residents' archives by resident ID, in turn.
{
  cat "$TMP/tokens.lua"
  cat <<'EOF'
local headers = { ["Authorization"] = "Bearer " .. operator, ["Content-Type"] = "application/json" }
local i = 0
request = function()
  i = i % #lookups + 1
  return wrk.format("POST", "/api/v1/credit/lookup", headers, lookups[i])
end
EOF
  cat "$TMP/report.lua"
} >"$TMP/lookup.lua"
# issue.lua: residents issue codes in turn; each thread writes the codes it is given to
# its own file.
{
  cat "$TMP/tokens.lua"
  cat <<EOF
local dir = "$TMP"
EOF
  cat <<'EOF'
local count = 0
setup = function(thread) count = count + 1; thread:set("tid", count) end
local out
local i = 0
init = function(args) out = io.open(dir .. "/codes." .. tid, "w") end
request = function()
  i = i % #tokens + 1
  return wrk.format("POST", "/api/v1/credit/me/rights-codes",
    { ["Authorization"] = "Bearer " .. tokens[i], ["Content-Type"] = "application/json" }, "{}")
end
response = function(status, headers, body)
  if status == 201 then
    local code = body:match('"code":"([^"]+)"')
    if code then out:write(code, "\n"); out:flush() end
  end
end
EOF
  cat "$TMP/report.lua"
} >"$TMP/issue.lua"
# check.lua: the hotel's system checks the issued codes, each once (thread t of T takes
# every T-th code); past the last, it starts over (those answers are "already used" and
# are counted apart). done prints how the checks were answered.
{
  cat "$TMP/tokens.lua"
  cat <<EOF
local dir = "$TMP"
local threads_total = $THREADS
EOF
  cat <<'EOF'
local count = 0
local threads = {}
setup = function(thread)
  count = count + 1
  thread:set("tid", count)
  table.insert(threads, thread)
end
local codes = {}
local i = 0
local headers = { ["Authorization"] = "Bearer " .. hotel, ["Content-Type"] = "application/json" }
answers = {}
init = function(args)
  local n = 0
  for line in io.lines(dir .. "/codes.txt") do
    if n % threads_total == tid - 1 then table.insert(codes, line) end
    n = n + 1
  end
end
request = function()
  i = i % #codes + 1
  return wrk.format("POST", "/api/v1/credit/checks", headers,
    '{"code":"' .. codes[i] .. '","matter":"hotel_room","amount":"0.01"}')
end
response = function(status, headers, body)
  local key = "http_" .. status
  if status == 200 then
    key = body:match('"decision":"(%a+)"') or "unreadable"
    local reason = body:match('"reason":"([%w_]+)"')
    if reason then key = key .. ":" .. reason end
  end
  answers[key] = (answers[key] or 0) + 1
end
done = function(summary, latency, requests)
  report_result(summary, latency)
  local total = {}
  for _, t in ipairs(threads) do
    local a = t:get("answers")
    for k, v in pairs(a) do total[k] = (total[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(total) do table.insert(parts, k .. "=" .. v) end
  table.sort(parts)
  io.write("CHECKS " .. table.concat(parts, " ") .. "\n")
end
EOF
  cat "$TMP/report.lua"
} >"$TMP/check.lua"

# run NAME LUA DURATION URL LABEL: one bounded wrk run; keeps its RESULT line.
run() {
  [ -f "$TMP/$2.lua" ] || { echo "no wrk script $2.lua" >&2; exit 1; }
  wrk_run "$1" "$2.lua" "$3" "$4" "$5"
}

: >"$TMP/runs.txt"
run healthz_before healthz "$DURATION" "$BASE/healthz" "GET /healthz (before)"
run whoami whoami "$DURATION" "$BASE/api/v1/auth/me" "GET /api/v1/auth/me (resident; a signed-in request's floor)"
run me me "$DURATION" "$BASE/api/v1/credit/me" "GET /api/v1/credit/me (resident's own archive)"
run office office "$DURATION" "$BASE/api/v1/credit/subjects/x" \
  "GET /api/v1/credit/subjects/{id} (office, random of $SUBJECTS; logs a look)"
run lookup lookup "$DURATION" "$BASE/api/v1/credit/lookup" \
  "POST /api/v1/credit/lookup (office, by resident ID; logs a look)"
rm -f "$TMP"/codes.*
run issue issue "$ISSUE_DURATION" "$BASE/api/v1/credit/me/rights-codes" \
  "POST /api/v1/credit/me/rights-codes (issue a code)"
cat "$TMP"/codes.[0-9]* >"$TMP/codes.txt"
CODES=$(wc -l <"$TMP/codes.txt")
echo "$CODES codes issued for the check run"
[ "$CODES" -gt 0 ] || { echo "no codes were issued" >&2; exit 1; }
run check check "$DURATION" "$BASE/api/v1/credit/checks" "POST /api/v1/credit/checks (hotel room, 0.01)"
run healthz_after healthz "$DURATION" "$BASE/healthz" "GET /healthz (after)"
PEAK_KB=$(peak_memory_kb)
echo "== after the run: =="
others | tee "$TMP/others.after"

# The database's own floor under the check, in the same run: one granted check's
# statements with no server in front (scripts/lib/check_floor.*), on a copy of this
# database (SQLite, one writer: the Python sqlite3 module with its statements prepared
# once) or on this database (PostgreSQL: pgbench -M prepared, as many clients as the
# server's pool has connections).
echo "== the database's floor under the check: $FLOOR_CHECKS checks, no server =="
if [ -n "$PG_ADMIN" ]; then
  read -r provider checker < <(psql "$DATABASE_URL" -qtAF' ' -c "SELECT o.id, u.id
    FROM organizations o JOIN users u ON u.organization_id = o.id
    WHERE o.kind = 'provider' AND o.provider_kind = 'hotel' LIMIT 1")
  psql "$DATABASE_URL" -q -v ON_ERROR_STOP=1 -v n="$FLOOR_CHECKS" -f scripts/lib/check_floor.sql
  pgbench -n -M prepared -c "$FLOOR_CLIENTS" -j "$THREADS" -t $((FLOOR_CHECKS / FLOOR_CLIENTS)) \
    -D provider="$provider" -D checker="$checker" -f scripts/lib/check_floor.pgbench \
    "$DATABASE_URL" | tee "$TMP/floor.out"
  FLOOR_RATE=$(awk '/^tps = / { printf "%.0f", $3 }' "$TMP/floor.out")
else
  sqlite3 "$DB" ".backup '$TMP/floor.db'"
  python3 scripts/lib/check_floor.py "$TMP/floor.db" "$FLOOR_CHECKS" | tee "$TMP/floor.out"
  FLOOR_RATE=$(sed -n 's/.*per_second=\([0-9]*\).*/\1/p' "$TMP/floor.out")
fi

echo
echo "== summary =="
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); wrk and server on the same machine"
echo "database: $BACKEND, $DB_MB MiB; $(paste -sd';' "$TMP/counts.txt" | sed 's/;/; /g')"
echo "fill: $FILL_TIMES"
echo "checks answered: $(sed 's/^CHECKS //' <(grep '^CHECKS ' "$TMP/check.out")) (of $CODES codes issued)"
echo "machine before: $(cat "$TMP/others.before")"
echo "machine after:  $(cat "$TMP/others.after")"
python3 - "$TMP" "$THREADS" "$CONNECTIONS" "$DURATION" "$PEAK_KB" "$FLOOR_RATE" <<'EOF'
import sys
tmp, peak_kb, floor = sys.argv[1], int(sys.argv[5] or 0), float(sys.argv[6] or 0)
sys.path.insert(0, "scripts/lib")
from bench import wrk_runs
runs, ref = wrk_runs(tmp)
ms = lambda us: f"{us / 1000:.2f}"
print(f"wrk -t{sys.argv[2]} -c{sys.argv[3]} -d{sys.argv[4]}; reference = mean /healthz rate = {ref:.0f} req/s")
print()
print("| endpoint | requests/s | ratio to /healthz | p50 ms | p90 ms | p99 ms | max ms | errors | non-2xx |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for name, (label, r) in runs.items():
    print(f"| {label} | {r['rps']:.0f} | {r['rps'] / ref:.3f} | {ms(r['p50_us'])} | "
          f"{ms(r['p90_us'])} | {ms(r['p99_us'])} | {ms(r['max_us'])} | {r['errors']} | {r['non2xx']} |")
print()
print("goal (issue 12): p99 under 10 ms and at least 0.3x /healthz")
for name in ("check", "me", "office", "lookup"):
    label, r = runs[name]
    p99_ok, rate_ok = r["p99_us"] < 10_000, r["rps"] / ref >= 0.3
    print(f"  {label}: p99 {'met' if p99_ok else 'NOT met'}, rate {'met' if rate_ok else 'NOT met'}")
check = runs["check"][1]["rps"]
print(f"the database's floor under the check (its statements alone, no server): {floor:.0f}/s "
      f"= {floor / ref:.3f}x /healthz; the check through the server: {check / floor:.2f}x that floor")
print(f"server peak memory (VmHWM): {peak_kb / 1024:.0f} MiB")
bad = [n for n, (_, r) in runs.items() if r["errors"] or r["non2xx"]]
if bad:
    sys.exit(f"errors or non-2xx answers in: {', '.join(bad)}")
EOF
