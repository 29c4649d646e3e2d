#!/usr/bin/env bash
# Flood (hardening): legitimate HL7 ACK p99 and worklist query p99 under 5,000 unauthenticated connections
# in 10 s on each port (HL7 TLS, DICOM TLS, DICOM plain) ÷ the same without the flood (target <= 2x), audit
# records and bytes the flood adds (target: bounded by the coalescing interval, not by the attack's size),
# the daemon's RSS peak. Loopback only; about 45 s. BENCH_QUICK=1: 3 s phases, 500 connections per port.
# Env: BENCH_FLOOD_COALESCE_MS (default 60000): the coalescing interval the audit bound assumes.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
NODE="$ROOT/node_modules/.bin/node"
[ -x "$NODE" ] || { echo "bench: $NODE missing; run 'npm ci' (or 'make deps')" >&2; exit 2; }
for tool in findscu ss du; do
  command -v "$tool" >/dev/null || { echo "bench: $tool missing; run 'make deps'" >&2; exit 2; }
done
PHASE_MS=10000; COUNT=5000
if [ "${BENCH_QUICK:-0}" = 1 ]; then PHASE_MS=3000; COUNT=500; fi
export TCP_NODELAY=1
mkdir -p .bench
echo "== flood: $COUNT unauthenticated connections in $PHASE_MS ms on each port vs none (targets: ACK and query p99 <= 2x, audit bounded)"
"$NODE" bench/flood-bench.ts --phase-ms "$PHASE_MS" --count "$COUNT" --coalesce-ms "${BENCH_FLOOD_COALESCE_MS:-60000}" \
  --out .bench/flood-results.json --daemon-log .bench/flood-edged.log
echo "results: .bench/flood-results.json (daemon log: .bench/flood-edged.log)"
