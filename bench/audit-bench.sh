#!/usr/bin/env bash
# Audit (issue 5): sustained append while orders commit, export + sign and verify a bundle of 1,000,000
# records (BENCH_QUICK=1: 100,000 records, a shorter append window).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
if [ "${BENCH_QUICK:-0}" = 1 ]; then
  export AUDIT_BENCH_RECORDS=${AUDIT_BENCH_RECORDS:-100000} AUDIT_BENCH_APPEND_MS=${AUDIT_BENCH_APPEND_MS:-3000}
  export AUDIT_START_RECORDS=${AUDIT_START_RECORDS:-100000}
fi
echo "== audit: append while serving orders; export + sign; verify (targets: >= 20,000/s; <= 20 s; <= 20 s at 1,000,000)"
"$ROOT/node_modules/.bin/node" bench/audit-bench.ts
echo "== audit: start-up with a long chain (read-back bounded to 500 ms), and the TPM head counter's cost per advance"
"$ROOT/node_modules/.bin/node" bench/audit-start-bench.ts
