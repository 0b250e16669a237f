#!/usr/bin/env bash
# Load test of the server (DESIGN.md §10, issue 4). Starts the release binary on
# 127.0.0.1 with a fresh database (SQLite in a temp dir, or a PostgreSQL database made
# for the run and dropped after it), sets up a tender with issued
# bonds through the public API only, then runs wrk against
#   (c) GET  /healthz          the reference: the server's raw request rate
#   (a) POST /api/v1/verify    public verification by number + code
#   (b) POST /api/v1/verify/bulk  the agency's bid-opening check of every bond
# and prints each rate as a ratio to /healthz measured in the same run (before and
# after the other runs; the mean is the reference). Everything is stopped and removed
# on exit, whatever happens.
#
# With LOAD_SCENARIO=pages it loads the web pages instead (issue 11): the public pages
# (home, verification form and answer, statistics), each role's main pages with a
# signed-in session cookie, the bid-opening page of the project timed request by
# request, and the server's peak memory.
#
# Usage: scripts/load.sh
# Settings (environment):
#   LOAD_SCENARIO=api      api (the verification endpoints) or pages
#   LOAD_BONDS=10          bonds issued on the project, one per enterprise and section (at
#                          most 200 sections; enterprises are added past the demo's two);
#                          default 1000 for pages
#   LOAD_DURATION=15s      each wrk run
#   LOAD_THREADS=2 LOAD_CONNECTIONS=16
#   LOAD_OPEN_SECS=20      bid deadline and opening, seconds after the project is created
#                          (90 for pages)
#   LOAD_PORT=18089        port on 127.0.0.1
#   LOAD_LOG=warn          server log filter (info logs every request)
#   LOAD_ONLY=REGEX        run only the loads whose names match (the /healthz reference
#                          always runs), e.g. LOAD_ONLY='ent_|iss_'
#   LOAD_PROFILE_DIR=DIR   record each load with `perf record -g` into DIR/NAME.perf.data
#                          (read with `perf report -i ...`)
#   BAOHAN_LOAD_POSTGRES_URL  a PostgreSQL server's admin URL (say
#                          postgres://postgres@127.0.0.1:5432/postgres): the run makes a
#                          database of its own there and drops it on exit; unset: SQLite
set -euo pipefail
cd "$(dirname "$0")/.."

SCENARIO=${LOAD_SCENARIO:-api}
case "$SCENARIO" in api) BONDS=${LOAD_BONDS:-10} ;;
  pages) BONDS=${LOAD_BONDS:-1000}; OPEN_SECS=${LOAD_OPEN_SECS:-90} ;;
  *) echo "LOAD_SCENARIO must be api or pages" >&2; exit 2 ;; esac
DURATION=${LOAD_DURATION:-15s}
THREADS=${LOAD_THREADS:-2}
CONNECTIONS=${LOAD_CONNECTIONS:-16}
OPEN_SECS=${OPEN_SECS:-${LOAD_OPEN_SECS:-20}}
PORT=${LOAD_PORT:-18089}
LOG=${LOAD_LOG:-warn}
ONLY=${LOAD_ONLY:-}
PROFILE_DIR=${LOAD_PROFILE_DIR:-}
BASE="http://127.0.0.1:$PORT"
BIN=target/release/baohan

PG_ADMIN=${BAOHAN_LOAD_POSTGRES_URL:-}
case "$BONDS" in '' | *[!0-9]*) echo "LOAD_BONDS must be a number" >&2; exit 2 ;; esac
if [ "$BONDS" -lt 1 ] || [ "$BONDS" -gt 4000 ]; then
  echo "LOAD_BONDS must be from 1 to 4000 (at most 200 sections, 20 enterprises)" >&2
  exit 2
fi

need() {
  command -v "$1" >/dev/null && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "load.sh: $1 is missing; install it (Debian: apt-get install -y $2)" >&2
    exit 2
  fi
  echo "== installing $2 =="
  apt-get update -qq && apt-get install -y -qq "$2" >/dev/null
}
need wrk wrk
need curl curl
need python3 python3
if [ -n "$PG_ADMIN" ]; then
  need psql postgresql-client
  psql "$PG_ADMIN" -qtAc 'SELECT 1' >/dev/null ||
    { echo "load.sh: cannot reach PostgreSQL at BAOHAN_LOAD_POSTGRES_URL" >&2; exit 2; }
fi

echo "== cargo build --release =="
cargo build --release --bin baohan

TMP=$(mktemp -d)
SCRIPT=load.sh
. scripts/lib/server.sh
cleanup() {
  local rc=$?
  stop_and_drop "$rc"
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if curl -s --max-time 1 -o /dev/null "$BASE/healthz"; then
  echo "load.sh: something already listens on 127.0.0.1:$PORT (set LOAD_PORT)" >&2
  exit 2
fi

echo "== demo PKI in a temp dir =="
"$BIN" pki ca --dir "$TMP/ca" --name "Baohan Load CA" >/dev/null
mkdir -p "$TMP/data" "$TMP/certs"

if [ -n "$PG_ADMIN" ]; then
  make_pg_database baohan_load
  BACKEND="PostgreSQL $(psql "$PG_ADMIN" -qtAc 'SHOW server_version'), database $PG_DB"
else
  DATABASE_URL="sqlite://$TMP/data/baohan.db"
  BACKEND="SQLite in a temp dir"
fi

echo "== server: $BIN demo on 127.0.0.1:$PORT, $BACKEND, log=$LOG =="
BAOHAN_DATABASE_URL="$DATABASE_URL" \
BAOHAN_DATA_DIR="$TMP/data" BAOHAN_CERTS_DIR="$TMP/certs" BAOHAN_LISTEN="127.0.0.1:$PORT" \
  BAOHAN_PUBLIC_BASE_URL="$BASE" BAOHAN_LOG="$LOG" RUST_LOG="$LOG" \
  BAOHAN_RATE_LIMIT_VERIFY_PER_MINUTE=1000000000 BAOHAN_RATE_LIMIT_LOGIN_PER_MINUTE=1000000000 \
  BAOHAN_RATE_LIMIT_VERIFY_PER_NUMBER_PER_MINUTE=1000000000 \
  BAOHAN_RATE_LIMIT_LOGIN_PER_ACCOUNT_PER_MINUTE=1000000000 \
  BAOHAN_APPLICATION_LIMIT_PER_DAY=1000000 BAOHAN_MAIL_TRANSPORT=file \
  "$BIN" demo >"$TMP/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
  curl -s --max-time 1 -o /dev/null "$BASE/healthz" && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "the server exited" >&2; exit 1; }
  sleep 0.2
done
curl -sf --max-time 2 -o /dev/null "$BASE/healthz"

echo "== setup through the public API: trust, issuer key, project, $BONDS bonds =="
python3 - "$BASE" "$TMP" "$BONDS" "$OPEN_SECS" "$BIN" >"$TMP/setup.env" <<'EOF'
import datetime, json, math, subprocess, sys, time

sys.path.insert(0, "scripts/lib")
from bench import Api, PASSWORD

base, tmp, bonds, open_secs, binary = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
call = Api(base, timeout=30).call

tokens = {}
passwords = {}
def login(user):
    if user not in tokens:
        password = passwords.get(user, PASSWORD)
        tokens[user] = call("POST", "/api/v1/auth/login", body={"username": user, "password": password})["token"]
    return tokens[user]

def read(path):
    with open(path) as f:
        return f.read()

operator = login("operator")
orgs = call("GET", "/api/v1/organizations", operator)
def org(uscc_body):
    return next(o for o in orgs if o["uscc"].startswith(uscc_body))
bank, tenderee = org("91371600BK0000003"), org("91371600TE0000007")

subprocess.run([binary, "pki", "issuer", "--ca-dir", f"{tmp}/ca", "--out-dir", f"{tmp}/bank",
                "--name", bank["name"], "--uscc", bank["uscc"]], check=True, stdout=subprocess.DEVNULL)
call("POST", "/api/v1/admin/trust-anchors", operator,
     {"name": "load CA", "certificate_pem": read(f"{tmp}/ca/ca.pem")})
call("POST", "/api/v1/admin/crls", operator, {"crl_pem": read(f"{tmp}/ca/crl.pem")})
call("POST", "/api/v1/admin/issuer-certificates", operator,
     {"organization_id": bank["id"], "certificate_pem": read(f"{tmp}/bank/issuer.pem"),
      "private_key_pem": read(f"{tmp}/bank/issuer.key.pem")})

# Enough enterprises for at most 200 sections: the demo's two, then more.
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
def uscc(body):
    total = sum(ALPHABET.index(c) * w for c, w in zip(body, WEIGHTS))
    return body + ALPHABET[(31 - total % 31) % 31]
enterprises = ["enterprise1", "enterprise2"]
for n in range(3, max(2, math.ceil(bonds / 200)) + 1):
    name = f"load-enterprise{n}"
    made = call("POST", "/api/v1/organizations", operator, {
        "kind": "enterprise", "name": f"滨州负载第{n}建设有限公司",
        "uscc": uscc(f"91371600MA3LD{n:04d}")})
    passwords[name] = f"load-password-{n}-2026"
    call("POST", "/api/v1/users", operator, {
        "organization_id": made["id"], "username": name, "display_name": "投标专员",
        "role": "enterprise", "password": passwords[name]})
    enterprises.append(name)

deadline = (datetime.datetime.now(datetime.timezone.utc)
            + datetime.timedelta(seconds=open_secs)).replace(microsecond=0)
sections = math.ceil(bonds / len(enterprises))
project = call("POST", "/api/v1/projects", login("agency"), {
    "code": "LOAD-" + str(int(time.time())), "name": "负载测试工程", "tenderee_uscc": tenderee["uscc"],
    "bid_deadline": deadline.isoformat(), "bid_opening_at": deadline.isoformat(),
    "bid_validity_days": 60,
    "sections": [{"code": f"S{i:03d}", "name": f"标段{i}", "bond_amount": "50000.00"}
                 for i in range(1, sections + 1)],
})
issued = []
started = time.monotonic()
for i in range(bonds):
    enterprise = enterprises[i % len(enterprises)]
    section = project["sections"][i // len(enterprises)]["id"]
    app = call("POST", "/api/v1/applications", login(enterprise),
               {"section_id": section, "issuer_id": bank["id"]})
    call("POST", f"/api/v1/applications/{app['id']}/approve", login("bank"), {"premium": "600.00"})
    call("POST", f"/api/v1/applications/{app['id']}/confirm-payment", login("bank"), {})
    out = call("POST", f"/api/v1/applications/{app['id']}/issue", login("bank"), {})
    issued.append((out["guarantee"]["number"], out["verification_code"]))
elapsed = time.monotonic() - started
if datetime.datetime.now(datetime.timezone.utc) >= deadline:
    sys.exit(f"issuing took {elapsed:.1f}s, past the deadline: raise LOAD_OPEN_SECS")

# One check of each endpoint before loading it: the answers must be what we measure.
report = call("POST", "/api/v1/verify", body={"number": issued[0][0], "code": issued[0][1]})
if report["indication"] != "PASSED":
    sys.exit(f"public verification is not PASSED: {json.dumps(report)[:400]}")
print(f"PROJECT_ID={project['id']}")
print(f"AGENCY_TOKEN={login('agency')}")
for role in ("enterprise1", "bank", "operator"):
    print(f"{role.upper()}_TOKEN={login(role)}")
print(f"OPENING_EPOCH={int(deadline.timestamp())}")
print(f"ISSUE_SECS={elapsed:.2f}")
with open(f"{tmp}/bonds.txt", "w") as f:
    for number, code in issued:
        f.write(f"{number} {code}\n")
EOF
# shellcheck disable=SC1091
. "$TMP/setup.env"
echo "issued $BONDS bonds in ${ISSUE_SECS}s (4 requests each, sequential)"

# wrk scripts. `done` prints one machine-readable line that summarize() reads.
cat >"$TMP/report.lua" <<'EOF'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d errors=%d non2xx=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect + e.read + e.write + e.timeout, e.status))
end
EOF
{
  echo 'local bodies = {'
  while read -r number code; do
    printf '  [[{"number":"%s","code":"%s"}]],\n' "$number" "$code"
  done <"$TMP/bonds.txt"
  echo '}'
  cat <<'EOF'
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
EOF
  cat "$TMP/report.lua"
} >"$TMP/verify.lua"
{
  cat <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $AGENCY_TOKEN"
wrk.body = '{"project_id":"$PROJECT_ID"}'
EOF
  cat "$TMP/report.lua"
} >"$TMP/bulk.lua"

# run NAME LUA URL LABEL: one bounded wrk run; keeps its RESULT line in $TMP/NAME.result
# and lists it for the summary.
run() {
  case "$1" in healthz*) ;; *)
    if [ -n "$ONLY" ] && ! [[ "$1" =~ $ONLY ]]; then return 0; fi ;;
  esac
  wrk_run "$1" "$2" "$DURATION" "$3" "$4"
}

# page NAME TOKEN: a wrk script that GETs as a browser, signed in with TOKEN's session
# cookie when one is given.
page() {
  {
    echo 'wrk.headers["Accept"] = "text/html"'
    echo 'wrk.headers["Accept-Language"] = "zh-CN"'
    if [ -n "$2" ]; then echo "wrk.headers[\"Cookie\"] = \"baohan_session=$2\""; fi
    cat "$TMP/report.lua"
  } >"$TMP/$1.lua"
}

# check PATH TOKEN: the page answers 200 before it is loaded.
check() {
  local code
  if [ -n "$2" ]; then
    code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: text/html' \
      -H "Cookie: baohan_session=$2" "$BASE$1")
  else
    code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: text/html' "$BASE$1")
  fi
  [ "$code" = 200 ] || { echo "$1 answers $code" >&2; exit 1; }
}

wait_for_opening() {
  local now
  now=$(date +%s)
  if [ "$now" -le "$OPENING_EPOCH" ]; then
    echo "== waiting $((OPENING_EPOCH - now + 1))s for bid opening =="
    sleep $((OPENING_EPOCH - now + 1))
  fi
}

run healthz_before report.lua "$BASE/healthz" "GET /healthz (before)"
if [ "$SCENARIO" = api ]; then
  run verify verify.lua "$BASE/api/v1/verify" "POST /api/v1/verify (number + code)"
  wait_for_opening
  bulk_count=$(curl -sS --max-time 30 -X POST "$BASE/api/v1/verify/bulk" \
    -H "Authorization: Bearer $AGENCY_TOKEN" -H 'content-type: application/json' \
    -d "{\"project_id\":\"$PROJECT_ID\"}" |
    python3 -c 'import json,sys; b=json.load(sys.stdin); print(b["count"], b["passed"])')
  read -r count passed <<<"$bulk_count"
  echo "bulk check before load: $count bonds, $passed PASSED"
  if [ "$count" -ne "$BONDS" ] || [ "$passed" -ne "$BONDS" ]; then
    echo "bulk verification does not report $BONDS PASSED bonds" >&2
    exit 1
  fi
  run bulk bulk.lua "$BASE/api/v1/verify/bulk" "POST /api/v1/verify/bulk ($BONDS bonds)"
else
  # The verification form posted with a number and code, rotating over the bonds.
  {
    echo 'local bodies = {'
    while read -r number code; do printf '  "number=%s&code=%s",\n' "$number" "$code"; done \
      <"$TMP/bonds.txt"
    echo '}'
    echo 'local i = 0'
    echo 'wrk.method = "POST"'
    echo 'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"'
    echo 'wrk.headers["Accept"] = "text/html"'
    echo 'request = function()'
    echo '  i = i % #bodies + 1'
    echo '  return wrk.format(nil, nil, nil, bodies[i])'
    echo 'end'
    cat "$TMP/report.lua"
  } >"$TMP/verify_form.lua"
  page public ""
  page enterprise "$ENTERPRISE1_TOKEN"
  page issuer "$BANK_TOKEN"
  page agency "$AGENCY_TOKEN"
  page operator "$OPERATOR_TOKEN"
  check / ""
  check /verify ""
  check /stats ""
  check /enterprise/applications "$ENTERPRISE1_TOKEN"
  check /enterprise/guarantees "$ENTERPRISE1_TOKEN"
  check /issuer/queue "$BANK_TOKEN"
  check /issuer/guarantees "$BANK_TOKEN"
  check /agency/projects "$AGENCY_TOKEN"
  check /operator/organizations "$OPERATOR_TOKEN"
  run home public.lua "$BASE/" "GET / (public)"
  run verify_page public.lua "$BASE/verify" "GET /verify"
  run verify_form verify_form.lua "$BASE/verify" "POST /verify (number + code, form)"
  run stats public.lua "$BASE/stats" "GET /stats"
  run ent_home enterprise.lua "$BASE/" "GET / (enterprise home)"
  run ent_apps enterprise.lua "$BASE/enterprise/applications" "GET /enterprise/applications"
  run ent_guarantees enterprise.lua "$BASE/enterprise/guarantees" "GET /enterprise/guarantees"
  run iss_queue issuer.lua "$BASE/issuer/queue" "GET /issuer/queue"
  run iss_guarantees issuer.lua "$BASE/issuer/guarantees" "GET /issuer/guarantees ($BONDS issued)"
  run agency_projects agency.lua "$BASE/agency/projects" "GET /agency/projects"
  run operator_orgs operator.lua "$BASE/operator/organizations" "GET /operator/organizations"
  if [ -z "$ONLY" ] || [[ opening =~ $ONLY ]]; then
    wait_for_opening
    check "/agency/projects/$PROJECT_ID/opening" "$AGENCY_TOKEN"
    echo "== the bid-opening page of $BONDS bonds, 10 requests one after another =="
    for _ in $(seq 10); do
      curl -s -o /dev/null -w '%{time_total}\n' -H 'Accept: text/html' \
        -H "Cookie: baohan_session=$AGENCY_TOKEN" "$BASE/agency/projects/$PROJECT_ID/opening"
    done | tee "$TMP/opening.times"
  fi
fi
run healthz_after report.lua "$BASE/healthz" "GET /healthz (after)"
PEAK_KB=$(peak_memory_kb)

echo
echo "== summary =="
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'),"\
  "$(openssl version | cut -d' ' -f1-2); wrk and server on the same machine"
echo "database: $BACKEND; scenario: $SCENARIO; $BONDS bonds"
python3 - "$TMP" "$BONDS" "$THREADS" "$CONNECTIONS" "$DURATION" "$SCENARIO" "$PEAK_KB" <<'EOF'
import sys
tmp, bonds, scenario, peak_kb = sys.argv[1], int(sys.argv[2]), sys.argv[6], int(sys.argv[7] or 0)
sys.path.insert(0, "scripts/lib")
from bench import wrk_runs
runs, ref = wrk_runs(tmp)
ms = lambda us: f"{us / 1000:.2f}"
print(f"wrk -t{sys.argv[3]} -c{sys.argv[4]} -d{sys.argv[5]}; reference = mean /healthz rate "
      f"= {ref:.0f} req/s")
print()
print("| endpoint | requests/s | ratio to /healthz | p50 ms | p90 ms | p99 ms | max ms | errors | non-2xx |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for name, (label, r) in runs.items():
    print(f"| {label} | {r['rps']:.0f} | {r['rps'] / ref:.3f} | {ms(r['p50_us'])} | "
          f"{ms(r['p90_us'])} | {ms(r['p99_us'])} | {ms(r['max_us'])} | {r['errors']} | {r['non2xx']} |")
print()
if scenario == "api":
    b = runs["bulk"][1]["rps"] * bonds
    print(f"bulk: {b:.0f} bonds verified/s = {b / ref:.3f} x the /healthz request rate; "
          f"public verify: {runs['verify'][1]['rps']:.0f} verifications/s")
else:
    pages = {n: v for n, v in runs.items() if not n.startswith("healthz")}
    slow = [v[0] for v in pages.values() if v[1]["rps"] / ref < 0.2 or v[1]["p99_us"] > 50_000]
    try:
        with open(f"{tmp}/opening.times") as f:
            times = sorted(float(t) * 1000 for t in f.read().split())
        print(f"bid-opening page ({bonds} bonds), 10 sequential requests: median "
              f"{times[len(times) // 2]:.0f} ms, max {times[-1]:.0f} ms (target: under 300 ms)")
    except FileNotFoundError:
        print("bid-opening page: not run (LOAD_ONLY)")
    print(f"pages below 0.2x /healthz or with p99 over 50 ms: {', '.join(slow) or 'none'}")
print(f"server peak memory (VmHWM): {peak_kb / 1024:.0f} MiB")
bad = [n for n, (_, r) in runs.items() if r["errors"] or r["non2xx"]]
if bad:
    sys.exit(f"errors or non-2xx answers in: {', '.join(bad)}")
EOF
