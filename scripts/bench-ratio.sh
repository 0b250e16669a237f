#!/usr/bin/env bash
# Relates verification and signing throughput to raw `openssl speed` on the same machine
# and the same core (DESIGN.md §10). Usage: scripts/bench-ratio.sh [extra criterion args]
# Target: warm verify >= 50% of openssl's verify rate for the same key type.
#
# "warm": the engine's signer cache holds this signer (chain, keyUsage, CRL facts
# already computed for these certificates and this trust-store version); the call costs
# the hashes, the DER walk and one public-key verification. "cold": the cache is
# cleared before every call, so the chain is built and the CRLs checked each time.
#
# `openssl speed` runs before and after the benchmarks and the mean is the reference,
# so a neighbour's load that changes during the run shows up as a spread between the two.
set -euo pipefail
cd "$(dirname "$0")/.."

CORE=${BENCH_CORE:-0}
pin() { if command -v taskset >/dev/null; then taskset -c "$CORE" "$@"; else "$@"; fi; }
CRITERION_ARGS=("$@")
if [ ${#CRITERION_ARGS[@]} -eq 0 ]; then
  CRITERION_ARGS=(--warm-up-time 1 --measurement-time 3)
fi
BENCHES=(verify_warm_p256 verify_cold_p256 verify_cades_t_warm_p256 sign_p256
         verify_warm_rsa2048 verify_cold_rsa2048 verify_cades_t_warm_rsa2048 sign_rsa2048)

echo "== machine =="
echo "nproc: $(nproc); CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "openssl: $(openssl version)"
if command -v taskset >/dev/null; then echo "pinned to core $CORE"; else echo "not pinned (no taskset)"; fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# speed_run: prints "rsa_sign rsa_verify ec_sign ec_verify" (operations per second).
speed_run() {
  local out
  out=$(pin openssl speed -seconds 3 -elapsed ecdsap256 rsa2048 2>/dev/null)
  awk '/^rsa 2048 bits/ { rs = $(NF-1); rv = $NF }
       /ecdsa \(nistp256\)/ { es = $(NF-1); ev = $NF }
       END { if (rs == "" || es == "") exit 1; print rs, rv, es, ev }' <<<"$out"
}

echo "== openssl speed (one core), before =="
speed=$(speed_run)
read -r rsa_s1 rsa_v1 ec_s1 ec_v1 <<<"$speed"
echo "rsa2048 sign/s $rsa_s1 verify/s $rsa_v1; p256 sign/s $ec_s1 verify/s $ec_v1"

echo "== cargo bench --bench verify (one core) =="
# Build first, unpinned and visibly: a build error must not pass for a benchmark.
cargo bench --bench verify --no-run
# Stale estimates from an earlier run must not be read as this run's figures.
for b in "${BENCHES[@]}"; do rm -rf "target/criterion/$b"; done
log=$(mktemp)
trap 'rm -f "$log"' EXIT
pin cargo bench --bench verify -- "${CRITERION_ARGS[@]}" >"$log" 2>&1 || { cat "$log"; exit 1; }
grep -E '^(verify|sign)_|time:' "$log"

echo "== openssl speed (one core), after =="
speed=$(speed_run)
read -r rsa_s2 rsa_v2 ec_s2 ec_v2 <<<"$speed"
echo "rsa2048 sign/s $rsa_s2 verify/s $rsa_v2; p256 sign/s $ec_s2 verify/s $ec_v2"
mean() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (a + b) / 2 }'; }
rsa_sign=$(mean "$rsa_s1" "$rsa_s2"); rsa_verify=$(mean "$rsa_v1" "$rsa_v2")
ec_sign=$(mean "$ec_s1" "$ec_s2"); ec_verify=$(mean "$ec_v1" "$ec_v2")

# Mean time per iteration in ns, from criterion's saved estimates.
mean_ns() {
  local file="target/criterion/$1/new/estimates.json"
  [ -f "$file" ] || { echo "no estimates for $1 (did the bench run?)" >&2; exit 1; }
  grep -oE '"mean":\{"confidence_interval":\{[^}]*\},"point_estimate":[0-9.eE+-]+' "$file" |
    grep -oE '[0-9.eE+-]+$'
}

echo "== per core (reference: mean of openssl speed before and after) =="
printf '| %-28s | %10s | %10s | %6s |\n' bench "ops/s" "openssl/s" ratio
printf '|%s|%s|%s|%s|\n' "------------------------------" "-----------:" "-----------:" "-------:"
# A CAdES-T verification checks two signatures: the signer's and the exchange's P-256
# time-stamp token. Its reference is openssl doing both: 1 / (1/signer + 1/p256).
both() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", 1 / (1 / a + 1 / b) }'; }
ec_both=$(both "$ec_verify" "$ec_verify"); rsa_both=$(both "$rsa_verify" "$ec_verify")
for pair in "verify_warm_p256:$ec_verify" "verify_cold_p256:$ec_verify" \
            "verify_cades_t_warm_p256:$ec_both" "sign_p256:$ec_sign" \
            "verify_warm_rsa2048:$rsa_verify" "verify_cold_rsa2048:$rsa_verify" \
            "verify_cades_t_warm_rsa2048:$rsa_both" "sign_rsa2048:$rsa_sign"; do
  name=${pair%%:*}; ref=${pair#*:}
  ns=$(mean_ns "$name")
  awk -v n="$name" -v ns="$ns" -v ref="$ref" \
    'BEGIN { ops = 1e9 / ns; printf "| %-28s | %10.0f | %10.0f | %5.0f%% |\n", n, ops, ref, 100 * ops / ref }'
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
