#!/usr/bin/env bash
# Relates warm verification throughput to raw `openssl speed` verify on the same machine
# and the same core (DESIGN.md §10). Usage: scripts/bench-ratio.sh [extra criterion args]
# Target: warm verify >= 50% of openssl's verify rate for the same key type.
set -euo pipefail
cd "$(dirname "$0")/.."

CORE=${BENCH_CORE:-0}
pin() { if command -v taskset >/dev/null; then taskset -c "$CORE" "$@"; else "$@"; fi; }
CRITERION_ARGS=("$@")
if [ ${#CRITERION_ARGS[@]} -eq 0 ]; then
  CRITERION_ARGS=(--warm-up-time 1 --measurement-time 3)
fi

echo "== openssl speed (one core) =="
speed=$(pin openssl speed -seconds 3 -elapsed ecdsap256 rsa2048 2>/dev/null)
rsa_verify=$(awk '/^rsa 2048 bits/ {print $NF}' <<<"$speed")
ec_verify=$(awk '/ecdsa \(nistp256\)/ {print $NF}' <<<"$speed")
echo "openssl rsa2048 verify/s: $rsa_verify"
echo "openssl p256    verify/s: $ec_verify"

echo "== cargo bench --bench verify (one core) =="
cargo bench --bench verify --no-run >/dev/null 2>&1
pin cargo bench --bench verify -- "${CRITERION_ARGS[@]}" 2>/dev/null | grep -E 'time:' || true

# Mean time per iteration in ns, from criterion's saved estimates.
mean_ns() {
  grep -oE '"mean":\{"confidence_interval":\{[^}]*\},"point_estimate":[0-9.eE+-]+' \
    "target/criterion/$1/new/estimates.json" | grep -oE '[0-9.eE+-]+$'
}

echo "== per core =="
printf '%-22s %12s %12s %8s\n' bench "ops/s" "openssl/s" ratio
for pair in "verify_warm_p256:$ec_verify" "verify_cold_p256:$ec_verify" \
            "verify_warm_rsa2048:$rsa_verify" "verify_cold_rsa2048:$rsa_verify"; do
  name=${pair%%:*}; ref=${pair#*:}
  ns=$(mean_ns "$name")
  awk -v n="$name" -v ns="$ns" -v ref="$ref" \
    'BEGIN { ops = 1e9 / ns; printf "%-22s %12.0f %12.0f %7.0f%%\n", n, ops, ref, 100 * ops / ref }'
done
