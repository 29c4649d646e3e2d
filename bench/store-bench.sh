#!/usr/bin/env bash
# Image path benchmarks, side by side with the anchors in one run (issue 3):
#   1. receive: storescu over TLS → the box (encrypted, fsynced spool) vs → DCMTK storescp over TLS,
#      200 × 512 KB and 20 × 50 MB; target box ≥ 0.8 × storescp
#   2. drain: 2,000 × 512 KB spooled while the PACS was down, forwarded into Orthanc once it is up, vs
#      storescu sending the same files straight to Orthanc; target ≥ 0.9 ×
#   3. peak RSS of the daemon while receiving one 200 MB object; target ≤ 150 MB
# Env: STORE_BENCH_QUICK=1 (small sizes, a smoke test), STORE_BENCH_BASE_PORT (default 14575; uses +0..+12),
#      STORE_BENCH_RUNS (default 3). Writes .bench/store-results.json. Stops only the processes it started.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PEERS=${PEERS_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/test/peers}
export TCP_NODELAY=1
QUICK=${STORE_BENCH_QUICK:-${BENCH_QUICK:-0}}
BASE=${STORE_BENCH_BASE_PORT:-14575}
RUNS=${STORE_BENCH_RUNS:-3}
if [ "$QUICK" = 1 ]; then N_SMALL=40; N_BIG=2; BIG=2048x2048; N_DRAIN=200; HUGE=4096x4096; RUNS=1
else N_SMALL=200; N_BIG=20; BIG=5120x5120; N_DRAIN=2000; HUGE=10240x10240; fi
OUT="$ROOT/.bench"; CACHE="$OUT/cache/store-$QUICK"; WORK="$OUT/work/store"
rm -rf "$WORK"; mkdir -p "$CACHE" "$WORK"
log() { printf '[store-bench %s] %s\n' "$(date +%T)" "$*" >&2; }

PIDS=()
cleanup() { local p; for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; sleep 0.5; for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

gen() { # DIR COUNT PRESET
  if [ ! -f "$1.done" ]; then rm -rf "$1"; PER_STUDY=${4:-$2} bash "$PEERS/dicom/gen-dicom.sh" "$1" "$2" "$3" >/dev/null 2>&1; touch "$1.done"; fi
}
log "generating data sets (cached in $CACHE)"
gen "$CACHE/small" "$N_SMALL" 512k
gen "$CACHE/big" "$N_BIG" "$BIG"
gen "$CACHE/drain" "$N_DRAIN" 512k
gen "$CACHE/huge" 1 "$HUGE"
bytes() { find "$1" -name '*.dcm' -printf '%s\n' | awk '{s+=$1} END {print s}'; }

# ---- PKI and a dev site for the box ----------------------------------------------------------------
bin/edgectl dev-site --dir "$WORK/site" --base-port "$BASE" --force >/dev/null
SITE="$WORK/site"
CT_CERT=$(node_modules/.bin/node -e 'const s=require(process.argv[1]);const m=s.modalities.find(x=>x.aeTitle==="CT01");console.log(m.certFile+" "+m.keyFile)' "$SITE/site.json")
read -r CT_CRT CT_KEY <<<"$CT_CERT"
CA=$(node_modules/.bin/node -e 'console.log(require(process.argv[1]).pki.caCert)' "$SITE/site.json")
PKI="$WORK/pki"; bash "$PEERS/dicom/make-pki.sh" "$PKI" >/dev/null 2>&1

set_pacs() { # CONFIG PORT: forward plain to Orthanc on PORT, quick retries
  node_modules/.bin/node -e '
    const fs=require("fs");const f=process.argv[1];const c=JSON.parse(fs.readFileSync(f,"utf8"));
    c.upstream={pacs:{host:"127.0.0.1",port:Number(process.argv[2]),aeTitle:"ORTHANC",tls:false,batchSize:100,maxAssociations:4,connectTimeoutMs:1000}};
    c.outbox={initialDelayMs:200,maxDelayMs:500,jitterPercent:10};
    fs.writeFileSync(f,JSON.stringify(c,null,2));' "$1" "$2"
}

EDGED_PID=""
start_box() { # CONFIG LOG
  bin/edged --config "$1" >"$2" 2>&1 &
  EDGED_PID=$!; PIDS+=("$EDGED_PID")
  for _ in $(seq 1 300); do grep -q '"edged.ready"' "$2" && return 0; kill -0 "$EDGED_PID" 2>/dev/null || break; sleep 0.1; done
  log "edged did not start"; tail -5 "$2" >&2; return 1
}
stop_box() { kill -TERM "$EDGED_PID" 2>/dev/null || true; wait "$EDGED_PID" 2>/dev/null || true; }

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_cmd() { local t0 t1; t0=$(now); "$@" >/dev/null 2>&1 || { log "failed: $*"; return 1; }; t1=$(now); echo "$t1 - $t0" | bc -l; }
# CPU time (user + system, clock ticks) a server process has used so far: less noisy than wall time on a busy box.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
HZ=$(getconf CLK_TCK)

# ---- 1. receive ------------------------------------------------------------------------------------
receive_case() { # NAME DIR
  local name=$1 dir=$2 b; b=$(bytes "$dir")
  local scp_port=$((BASE + 5)) box_times=() scp_times=() scp_cpu=0 box_cpu=0 c0
  TLS_DIR="$PKI/ec" LOG_DIR="$WORK/logs" bash "$PEERS/dicom/scp-start.sh" storescp "$scp_port" "$WORK/rx" >/dev/null 2>&1
  local scp_pid; scp_pid=$(cat "$WORK/logs/storescp-$scp_port.pid"); PIDS+=("$scp_pid")
  start_box "$SITE/edge.json" "$WORK/box-$name.log"
  for _ in $(seq 1 "$RUNS"); do
    rm -rf "$WORK/rx"/*
    c0=$(cpu_ticks "$scp_pid")
    scp_times+=("$(time_cmd storescu -aet MODALITY1 -aec STORESCP +tls "$PKI/ec/client.key" "$PKI/ec/client.crt" +cf "$PKI/ec/ca.crt" 127.0.0.1 "$scp_port" +sd "$dir")")
    scp_cpu=$((scp_cpu + $(cpu_ticks "$scp_pid") - c0)); c0=$(cpu_ticks "$EDGED_PID")
    box_times+=("$(time_cmd storescu -aet CT01 -aec EDGE +tls "$CT_KEY" "$CT_CRT" +cf "$CA" 127.0.0.1 "$((BASE + 1))" +sd "$dir")")
    box_cpu=$((box_cpu + $(cpu_ticks "$EDGED_PID") - c0))
  done
  stop_box; kill -TERM "$scp_pid" 2>/dev/null || true
  local ts tb; ts=$(printf '%s\n' "${scp_times[@]}" | median); tb=$(printf '%s\n' "${box_times[@]}" | median)
  local rs rb ratio; rs=$(echo "$b / $ts / 1000000" | bc -l); rb=$(echo "$b / $tb / 1000000" | bc -l); ratio=$(echo "$rb / $rs" | bc -l)
  local cs cb; cs=$(echo "$scp_cpu / $HZ / ($b * $RUNS / 1000000000)" | bc -l); cb=$(echo "$box_cpu / $HZ / ($b * $RUNS / 1000000000)" | bc -l)
  printf 'receive %-10s storescp %7.1f MB/s   box %7.1f MB/s   ratio %.2f (target >= 0.80)   CPU s/GB storescp %.2f box %.2f\n' "$name" "$rs" "$rb" "$ratio" "$cs" "$cb"
  echo "\"receive-$name\": {\"storescpMBps\": $rs, \"boxMBps\": $rb, \"ratio\": $ratio, \"storescpCpuSecondsPerGB\": $cs, \"boxCpuSecondsPerGB\": $cb}," >>"$WORK/results.part"
}
log "receive: $N_SMALL x 512 KB and $N_BIG x $BIG over TLS, $RUNS run(s) each"
: >"$WORK/results.part"
receive_case small "$CACHE/small"
receive_case big "$CACHE/big"

# ---- 2. drain --------------------------------------------------------------------------------------
log "drain: $N_DRAIN x 512 KB"
HTTP=$((BASE + 7)); DPORT=$((BASE + 8))
cp -r "$SITE" "$WORK/site-drain"; rm -rf "$WORK/site-drain/data"
sed -i "s#$SITE#$WORK/site-drain#g" "$WORK/site-drain/edge.json"
set_pacs "$WORK/site-drain/edge.json" "$DPORT"
start_box "$WORK/site-drain/edge.json" "$WORK/box-drain.log"
storescu -aet CT01 -aec EDGE +tls "$CT_KEY" "$CT_CRT" +cf "$CA" 127.0.0.1 "$((BASE + 1))" +sd "$CACHE/drain" >/dev/null 2>&1
DB=$(bytes "$CACHE/drain")
count_instances() { curl -fsS "http://127.0.0.1:$HTTP/statistics" 2>/dev/null | node_modules/.bin/node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).CountInstances)}catch{console.log(0)}})'; }
OPID=$(bash "$PEERS/orthanc/orthanc-start.sh" "$HTTP" "$DPORT" "$WORK/orthanc-drain" 2>/dev/null | tail -1); PIDS+=("$OPID")
T0=$(now)
until [ "$(count_instances)" -ge "$N_DRAIN" ]; do sleep 0.1; done
T1=$(now); TBOX=$(echo "$T1 - $T0" | bc -l)
stop_box; bash "$PEERS/lib/stop.sh" "$OPID" >/dev/null 2>&1 || true
OPID=$(bash "$PEERS/orthanc/orthanc-start.sh" "$HTTP" "$DPORT" "$WORK/orthanc-anchor" 2>/dev/null | tail -1); PIDS+=("$OPID")
TANCHOR=$(time_cmd storescu -aet CT01 -aec ORTHANC 127.0.0.1 "$DPORT" +sd "$CACHE/drain")
bash "$PEERS/lib/stop.sh" "$OPID" >/dev/null 2>&1 || true
RATIO=$(echo "$TANCHOR / $TBOX" | bc -l)
printf 'drain   %-10s storescu->Orthanc %6.1f s (%5.1f MB/s)   box->Orthanc %6.1f s (%5.1f MB/s)   ratio %.2f (target >= 0.90)\n' \
  "$N_DRAIN" "$TANCHOR" "$(echo "$DB / $TANCHOR / 1000000" | bc -l)" "$TBOX" "$(echo "$DB / $TBOX / 1000000" | bc -l)" "$RATIO"
echo "\"drain\": {\"storescuSeconds\": $TANCHOR, \"boxSeconds\": $TBOX, \"ratio\": $RATIO}," >>"$WORK/results.part"

# ---- 3. peak RSS -----------------------------------------------------------------------------------
log "peak RSS receiving one $HUGE object"
start_box "$SITE/edge.json" "$WORK/box-rss.log"
BEFORE=$(awk '/VmRSS/ {print $2}' "/proc/$EDGED_PID/status")
storescu -aet CT01 -aec EDGE +tls "$CT_KEY" "$CT_CRT" +cf "$CA" 127.0.0.1 "$((BASE + 1))" +sd "$CACHE/huge" >/dev/null 2>&1
HWM=$(awk '/VmHWM/ {print $2}' "/proc/$EDGED_PID/status")
stop_box
printf 'rss     %-10s object %6.0f MB   RSS before %5.0f MB   peak %5.0f MB (target <= 150)\n' "$HUGE" "$(echo "$(bytes "$CACHE/huge") / 1000000" | bc -l)" "$(echo "$BEFORE / 1024" | bc -l)" "$(echo "$HWM / 1024" | bc -l)"
echo "\"rss\": {\"beforeMB\": $(echo "$BEFORE / 1024" | bc -l), \"peakMB\": $(echo "$HWM / 1024" | bc -l)}" >>"$WORK/results.part"
{ echo "{"; cat "$WORK/results.part"; echo "}"; } >"$OUT/store-results.json"
log "results in $OUT/store-results.json"
