#!/usr/bin/env bash
# `make bench`: every benchmark, each side by side with its anchor in the same run. Results go to .bench/.
#   BENCH_ONLY=worklist|store|audit|keys|flood|segmentation|access|admin|incidents|downtime  run one part only
#   BENCH_QUICK=1                         small sizes: a smoke test of the scripts, not figures to quote
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
ONLY=${BENCH_ONLY:-}
QUICK=${BENCH_QUICK:-0}
mkdir -p .bench
status=0
want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

# Orders in, worklist out (issue: orders/worklist): MWL per query vs wlmscpfs, HL7 ingest vs raw synced
# writes, RSS under query load, start-up.
if want worklist; then bash bench/worklist-bench.sh || { echo "worklist bench failed" >&2; status=1; }; fi

# Image path: receive vs storescp, drain into Orthanc vs storescu, peak RSS on a 200 MB object.
if want store; then STORE_BENCH_QUICK="$QUICK" bash bench/store-bench.sh || { echo "store bench failed" >&2; status=1; }; fi

# Audit trail: append under order load, bundle export + sign and verify at 1,000,000 records.
if want audit; then BENCH_QUICK="$QUICK" bash bench/audit-bench.sh || { echo "audit bench failed" >&2; status=1; }; fi

# Keys: start-up incl. unseal, provision factory → serving, data-key rotation of 100,000 orders while
# serving (swtpm).
if want keys; then
  node_modules/.bin/node bench/keys-bench.ts | tee .bench/keys-results.json || { echo "keys bench failed" >&2; status=1; }
fi

# Unauthenticated flood: the RIS's ACK p99 and CT01's query p99 while 5,000 connections in 10 s hit each
# port, beside the same load without it; audit records and bytes the flood costs; the daemon's RSS peak.
if want flood; then
  bash bench/flood-bench.sh || { echo "flood bench failed" >&2; status=1; }
fi

# Segmentation (root, network namespaces): render + nft -c + nft -f of a 50-modality site; connection
# setup of an allowed modality with the ruleset loaded vs without.
if want segmentation; then
  if [ "$QUICK" = 1 ]; then export SEG_BENCH_APPLIES=3 SEG_BENCH_CONNECTS=50 SEG_BENCH_ECHOES=10 SEG_BENCH_BLOCKS=2; fi
  node_modules/.bin/node bench/segmentation-bench.ts | tee .bench/segmentation-results.json || { echo "segmentation bench failed" >&2; status=1; }
fi
# Access: HL7 ACK p99 on 8 connections with bursts of 20 sign-ins vs without (target ≤ 1.2×); argon2id
# time per hash.
if want access; then
  if [ "$QUICK" = 1 ]; then ACCESS_ARGS=(--phase-ms 3000 --phases 1 --hashes 5); else ACCESS_ARGS=(); fi
  node_modules/.bin/node bench/access-bench.ts "${ACCESS_ARGS[@]}" --out .bench/access-results.json || { echo "access bench failed" >&2; status=1; }
fi

# Incident support: audit append rate with every alert rule on beside none; breach-scope report over
# 1,000,000 records.
if want incidents; then
  if [ "$QUICK" = 1 ]; then export INCIDENTS_BENCH_RECORDS=100000 INCIDENTS_BENCH_APPEND_MS=2000; fi
  node_modules/.bin/node bench/incidents-bench.ts | tee .bench/incidents-results.txt || { echo "incidents bench failed" >&2; status=1; }
fi

# Downtime: merge of a 10,000-item upstream worklist answer (create, unchanged, every item changed) and one
# modality's worklist query latency during the merge ÷ idle (target ≤ 1.5×), on a real encrypted store.
if want downtime; then
  if [ "$QUICK" = 1 ]; then export DOWNTIME_BENCH_ITEMS=500; fi
  node_modules/.bin/node bench/downtime-bench.ts | tee .bench/downtime-results.json || { echo "downtime bench failed" >&2; status=1; }
fi

# Admin page: JS/CSS gzipped per view, navigation → overview live data, /metrics scrape with 100 peers
# configured, HL7 ACK p99 with the overview open and refreshing ÷ without (Chromium, loopback).
if want admin; then
  phase=20000
  [ "$QUICK" = 1 ] && phase=5000
  node_modules/.bin/node bench/admin-bench.ts --phase-ms "$phase" --out .bench/admin-results.json || { echo "admin bench failed" >&2; status=1; }
fi
exit $status
