#!/usr/bin/env bash
# Bulk import benchmark (issue 12, "Scale"; not run in CI). For each size (100,000 and
# 1,000,000 records by default) it generates one CSV file of valid records (resident IDs
# and USCCs with correct check characters, several categories, subjects repeated), then
# times in the same run:
#
#   - `baohan import FILE` (release build) on a fresh SQLite database, against the
#     `sqlite3` shell's `.import` of the same file into a bare table;
#   - the same on a fresh PostgreSQL database, against `psql`'s `\copy` of the same
#     file into a bare table of text columns.
#
# Each import includes validation, ID hashing, de-duplication and score updates; the
# bare loads include none. A second row per database compares the import with the
# archive's own floor: the same stored subjects and records copied into a fresh migrated
# database (foreign keys, indexes and triggers as the import meets them) by SQL on
# SQLite, by psql's \copy on PostgreSQL. Peak memory
# (max RSS) of each import comes from /usr/bin/time -v. Printed as a Markdown table: seconds, records/s, and the import's
# speed as a ratio of the bare load's (bare seconds / import seconds).
#
# Usage: scripts/bench-import.sh [SIZE...]
# Environment: BAOHAN_BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres;
# set it empty to skip PostgreSQL), CARGO_TARGET_DIR (default target), BENCH_DIR (work
# directory, default a new temporary one, removed at the end).
set -euo pipefail

cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100000 1000000)
pg_admin=${BAOHAN_BENCH_POSTGRES_URL-postgres://postgres@127.0.0.1:5432/postgres}
# baohan reads every BAOHAN_ variable as a setting and refuses unknown ones.
unset BAOHAN_BENCH_POSTGRES_URL
target=${CARGO_TARGET_DIR:-target}
work=${BENCH_DIR:-$(mktemp -d)}
keep_work=${BENCH_DIR:+1}
mkdir -p "$work"
cleanup() { [ -n "$keep_work" ] || rm -rf "$work"; }
trap cleanup EXIT

for tool in sqlite3 /usr/bin/time python3; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
if [ -n "$pg_admin" ]; then command -v psql >/dev/null || { echo "missing: psql" >&2; exit 1; }; fi

cargo build --release --bin baohan >&2
baohan="$target/release/baohan"

# generate N FILE: N records for N/4 persons and N/20 enterprises (each repeated),
# seven categories' worth of mixes, one in ten lapsed already.
generate() {
    python3 - "$1" "$2" <<'PY'
import datetime, sys
n, path = int(sys.argv[1]), sys.argv[2]
RW = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
RC = "10X98765432"
UA = "0123456789ABCDEFGHJKLMNPQRTUWXY"
UW = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
base = datetime.date(1950, 1, 1)
def person(k):
    body = "371602" + (base + datetime.timedelta(days=k // 900)).strftime("%Y%m%d") + "%03d" % (k % 900 + 100)
    return body + RC[sum(int(c) * w for c, w in zip(body, RW)) % 11]
def enterprise(k):
    body = "91371600MA" + "%07d" % (k + 1)
    c = 31 - sum(UA.index(ch) * w for ch, w in zip(body, UW)) % 31
    return body + UA[0 if c == 31 else c]
cats = ["identity_verified", "tax_grade_a", "administrative_penalty", "tax_grade_a",
        "identity_verified", "administrative_penalty", "judgment_defaulter"]
yesterday = (datetime.datetime.utcnow() + datetime.timedelta(hours=8) - datetime.timedelta(days=1)).date().isoformat()
persons, enterprises = max(n // 4, 1), max(n // 20, 1)
with open(path, "w", encoding="utf-8") as f:
    f.write("subject_type,subject_id,subject_name,category,polarity,points,occurred_at,expires_at,source_department,source_ref,note\n")
    for i in range(n):
        if i % 3 == 2:
            kind, sid, name = "enterprise", enterprise(i % enterprises), "企业%d" % (i % enterprises)
        else:
            kind, sid, name = "person", person(i % persons), "居民%d" % (i % persons)
        occurred, expires = (("2019-05-01", "2020-05-01") if i % 10 == 9 else (yesterday, ""))
        f.write("%s,%s,%s,%s,,,%s,%s,省公共信用信息平台,NB-%d,\n" % (kind, sid, name, cats[i % 7], occurred, expires, i))
PY
}

# seconds and max RSS (KiB) of a command, from /usr/bin/time -v
timed() {
    local log="$work/time.log"
    /usr/bin/time -v "$@" >"$work/out.log" 2>"$log" || { cat "$work/out.log" "$log" >&2; exit 1; }
    local wall rss
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
    python3 -c "import sys; p=sys.argv[1].split(':'); s=sum(float(x)*60**i for i,x in enumerate(reversed(p))); print(f'{s:.2f} {sys.argv[2]}')" "$wall" "$rss"
}

row() { # name records seconds rss bare_seconds
    python3 -c "
import sys
name, n, s, rss, bare = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], float(sys.argv[5])
print(f'| {name} | {n:,} | {s:.2f} s | {n/s:,.0f}/s | {rss} | {bare:.2f} s | {n/bare:,.0f}/s | {bare/s:.2f}x |')
" "$@"
}

echo "| import into | records | import | rate | peak RSS (KiB) | bare load | bare rate | ratio |"
echo "|---|---|---|---|---|---|---|---|"
for n in "${sizes[@]}"; do
    file="$work/records-$n.csv"
    generate "$n" "$file"

    # SQLite: the importer on a migrated database; sqlite3 .import into a bare table.
    data="$work/sqlite-$n"
    rm -rf "$data" # a kept work directory: the import starts from an empty archive
    mkdir -p "$data"
    export BAOHAN_DATA_DIR="$data" BAOHAN_DATABASE_URL="sqlite://$data/baohan.db" BAOHAN_LOG=warn
    "$baohan" migrate >/dev/null
    read -r secs rss < <(timed "$baohan" import "$file")
    grep -q " 0 rejected" "$work/out.log" || { cat "$work/out.log" >&2; exit 1; }
    read -r bare _ < <(timed sqlite3 "$data/bare.db" ".mode csv" ".import $file bare")
    row "SQLite" "$n" "$secs" "$rss" "$bare"
    # The archive's own floor: the rows the import stored, copied by SQL into a fresh
    # migrated archive (foreign keys on, every index and trigger), nothing else.
    floor_dir="$work/sqlite-floor-$n"
    rm -rf "$floor_dir" && mkdir -p "$floor_dir"
    BAOHAN_DATA_DIR="$floor_dir" BAOHAN_DATABASE_URL="sqlite://$floor_dir/baohan.db" "$baohan" migrate >/dev/null
    read -r floor _ < <(timed sqlite3 "$floor_dir/baohan.db" "PRAGMA foreign_keys = ON" \
        "PRAGMA cache_size = -65536" "ATTACH '$data/baohan.db' AS done" "BEGIN" \
        "INSERT INTO record_categories SELECT * FROM done.record_categories" \
        "INSERT INTO credit_subjects SELECT * FROM done.credit_subjects" \
        "INSERT INTO credit_records SELECT * FROM done.credit_records ORDER BY rowid" "COMMIT")
    row "SQLite, against the archive's floor" "$n" "$secs" "$rss" "$floor"

    # PostgreSQL: a fresh database each; psql \copy into a bare table of text columns.
    if [ -n "$pg_admin" ]; then
        db="bench_import_$$_$n"
        psql -X -q -d "$pg_admin" -c "CREATE DATABASE $db" >/dev/null
        url="${pg_admin%/*}/$db"
        export BAOHAN_DATA_DIR="$work/pg-$n" BAOHAN_DATABASE_URL="$url"
        rm -rf "$BAOHAN_DATA_DIR"
        mkdir -p "$BAOHAN_DATA_DIR"
        "$baohan" migrate >/dev/null
        read -r secs rss < <(timed "$baohan" import "$file")
        grep -q " 0 rejected" "$work/out.log" || { cat "$work/out.log" >&2; exit 1; }
        psql -X -q -d "$url" -c "CREATE TABLE bare (subject_type text, subject_id text, subject_name text, category text, polarity text, points text, occurred_at text, expires_at text, source_department text, source_ref text, note text)"
        read -r bare _ < <(timed psql -X -q -d "$url" -c "\\copy bare FROM '$file' WITH (FORMAT csv, HEADER true)")
        row "PostgreSQL" "$n" "$secs" "$rss" "$bare"
        # The archive's own floor: the rows the import stored, copied out and then
        # \copy'd in one transaction into a fresh migrated archive (foreign keys, every
        # index and trigger), nothing else.
        floor_db="bench_import_floor_$$_$n"
        psql -X -q -d "$pg_admin" -c "CREATE DATABASE $floor_db" >/dev/null
        floor_url="${pg_admin%/*}/$floor_db"
        BAOHAN_DATABASE_URL="$floor_url" "$baohan" migrate >/dev/null
        copies=()
        for table in record_categories credit_subjects credit_records; do
            psql -X -q -d "$url" -c "\\copy $table TO '$work/$table.copy'"
            copies+=(-c "\\copy $table FROM '$work/$table.copy'")
        done
        read -r floor _ < <(timed psql -X -q -1 -v ON_ERROR_STOP=1 -d "$floor_url" "${copies[@]}")
        row "PostgreSQL, against the archive's floor" "$n" "$secs" "$rss" "$floor"
        rm -f "$work"/*.copy
        psql -X -q -d "$pg_admin" -c "DROP DATABASE $floor_db WITH (FORCE)" >/dev/null
        psql -X -q -d "$pg_admin" -c "DROP DATABASE $db WITH (FORCE)" >/dev/null
    fi
done
