# Shared by scripts/load.sh and scripts/bench-scale.sh (sourced, not run): a server
# started for a measurement, the PostgreSQL database made for it, and their removal.
#
# The caller sets SCRIPT (its name, for messages), TMP (its work directory) and, when
# it uses PostgreSQL, PG_ADMIN; these functions set and read SERVER_PID and PG_DB.

SERVER_PID=
PG_DB=

# stop_and_drop: stops the server (TERM, then KILL after TIMEOUT tenths of a second, 50
# by default), drops the database made for the run, and shows the server's last log
# lines when the script is failing (RC, the script's exit status).
stop_and_drop() {
  local rc=$1 timeout=${2:-50}
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq "$timeout"); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ -n "$PG_DB" ]; then
    psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null ||
      echo "$SCRIPT: could not drop the database $PG_DB" >&2
  fi
  if [ "$rc" -ne 0 ] && [ -f "$TMP/server.log" ]; then
    echo "== last server log lines ==" >&2
    tail -20 "$TMP/server.log" >&2
  fi
}

# make_pg_database PREFIX: creates a database named PREFIX_<time>_<pid> on PG_ADMIN's
# server (dropped by stop_and_drop) and sets PG_DB to its name and DATABASE_URL to its
# URL: the admin URL with the new database as its path, query parameters kept.
make_pg_database() {
  PG_DB="$1_$(date +%s)_$$"
  psql "$PG_ADMIN" -qc "CREATE DATABASE \"$PG_DB\"" >/dev/null
  DATABASE_URL=$(python3 -c 'import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' \
    "$PG_ADMIN" "$PG_DB")
}

# peak_memory_kb: the server's peak resident memory so far (VmHWM), in KiB.
peak_memory_kb() {
  awk '/VmHWM/ {print $2}' "/proc/$SERVER_PID/status"
}

# wrk_run NAME SCRIPT DURATION URL LABEL: one wrk load (THREADS threads, CONNECTIONS
# connections, the Lua SCRIPT in TMP that prints a RESULT line), recorded by perf into
# PROFILE_DIR when it is set; its RESULT goes to TMP/NAME.result and "NAME|LABEL" to
# TMP/runs.txt (read by scripts/lib/bench.py's wrk_runs).
wrk_run() {
  local profiler=""
  if [ -n "${PROFILE_DIR:-}" ]; then
    mkdir -p "$PROFILE_DIR"
    perf record -q -F 999 -g -p "$SERVER_PID" -o "$PROFILE_DIR/$1.perf.data" >/dev/null 2>&1 &
    profiler=$!
  fi
  echo "== wrk -t$THREADS -c$CONNECTIONS -d$3 --latency -s $2 $4 =="
  timeout 300 wrk -t"$THREADS" -c"$CONNECTIONS" -d"$3" --timeout 10s --latency \
    -s "$TMP/$2" "$4" | tee "$TMP/$1.out"
  if [ -n "$profiler" ]; then kill -INT "$profiler" && wait "$profiler" || true; fi
  grep '^RESULT ' "$TMP/$1.out" >"$TMP/$1.result"
  echo "$1|$5" >>"$TMP/runs.txt"
}
