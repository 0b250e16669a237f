#!/usr/bin/env bash
# SM2 throughput (src/pki/gm) relative to `openssl speed sm2` on the same machine and
# core, measured before and after the benches (DESIGN.md §10; as scripts/bench-ratio.sh).
# Usage: scripts/bench-sm2.sh [extra criterion args]
set -euo pipefail
cd "$(dirname "$0")/.."

CORE=${BENCH_CORE:-0}
pin() { if command -v taskset >/dev/null; then taskset -c "$CORE" "$@"; else "$@"; fi; }
CRITERION_ARGS=("$@")
if [ ${#CRITERION_ARGS[@]} -eq 0 ]; then
  CRITERION_ARGS=(--warm-up-time 1 --measurement-time 3)
fi
BENCHES=(sm2_verify_raw sm2_sign_raw sm2_verify_detached sm2_engine_verify_warm)

echo "openssl: $(openssl version); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
# prints "sign/s verify/s" of OpenSSL's SM2 (curve SM2, SM3 with Z, as ours).
speed_run() {
  pin openssl speed -seconds 3 sm2 2>/dev/null |
    awk '/SM2 \(CurveSM2\)/ { print $(NF-1), $NF; found = 1 } END { exit !found }'
}
read -r s1 v1 <<<"$(speed_run)"
echo "openssl speed sm2, before: sign/s $s1 verify/s $v1"
cargo bench --bench sm2 --no-run
for b in "${BENCHES[@]}"; do rm -rf "target/criterion/$b"; done
log=$(mktemp)
trap 'rm -f "$log"' EXIT
pin cargo bench --bench sm2 -- "${CRITERION_ARGS[@]}" >"$log" 2>&1 || { cat "$log"; exit 1; }
grep -E '^sm2_|time:' "$log"
read -r s2 v2 <<<"$(speed_run)"
echo "openssl speed sm2, after: sign/s $s2 verify/s $v2"
sign=$(awk -v a="$s1" -v b="$s2" 'BEGIN { printf "%.1f", (a + b) / 2 }')
verify=$(awk -v a="$v1" -v b="$v2" 'BEGIN { printf "%.1f", (a + b) / 2 }')
mean_ns() {
  grep -oE '"mean":\{"confidence_interval":\{[^}]*\},"point_estimate":[0-9.eE+-]+' \
    "${CARGO_TARGET_DIR:-target}/criterion/$1/new/estimates.json" | grep -oE '[0-9.eE+-]+$'
}
printf '| %-22s | %10s | %10s | %6s |\n' bench "ops/s" "openssl/s" ratio
# verify_detached does two SM2 verifications (signature and certificate): its
# reference is openssl doing two, verify/2.
half=$(awk -v v="$verify" 'BEGIN { printf "%.1f", v / 2 }')
# The warm engine does one (the chain and CRL facts are cached): openssl's verify rate.
for pair in "sm2_verify_raw:$verify" "sm2_sign_raw:$sign" "sm2_verify_detached:$half" \
  "sm2_engine_verify_warm:$verify"; do
  name=${pair%%:*}; ref=${pair#*:}
  ns=$(mean_ns "$name")
  awk -v n="$name" -v ns="$ns" -v ref="$ref" \
    'BEGIN { ops = 1e9 / ns; printf "| %-22s | %10.0f | %10.0f | %5.0f%% |\n", n, ops, ref, 100 * ops / ref }'
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
