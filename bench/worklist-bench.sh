#!/usr/bin/env bash
# Worklist and order benchmarks, side by side with the DCMTK anchor (wlmscpfs), in one run on loopback:
#   1. MWL query per query (one association, findscu --repeat) at three worklist sizes, plain and TLS;
#      whole findscu runs against the loaded box and an empty box
#   2. ORM^O01 ingest over MLLP/TLS, 1 and 8 connections, beside LevelDB's raw synced-write rate
#   3. RSS under query load and start-up to ready with the largest worklist stored
# Prints a table and writes .bench/results.json. BENCH_QUICK=1: small sizes, few runs (a smoke test).
# Env: BENCH_BASE_PORT (default 13575; uses base..base+12), BENCH_ANCHOR_LARGE=1 (wlmscpfs at the largest
#      size too: ~30 min of dump2dcm on 2 cores at 100,000), BENCH_KEEP_WORK=1 (keep .bench/work).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
NODE="$ROOT/node_modules/.bin/node"
[ -x "$NODE" ] || { echo "bench: $NODE missing; run 'npm ci' (or 'make deps')" >&2; exit 2; }
for tool in findscu wlmscpfs dump2dcm hyperfine cc; do
  command -v "$tool" >/dev/null || { echo "bench: $tool missing; run 'make deps'" >&2; exit 2; }
done

QUICK=${BENCH_QUICK:-0}
BASE=${BENCH_BASE_PORT:-13575}
ANCHOR_LARGE=${BENCH_ANCHOR_LARGE:-0}
if [ "$QUICK" = 1 ]; then
  SMALL=100; MEDIUM=400; LARGE=1000
  RUNS=3; WARMUP=1; ANCHOR_RUNS=3; WHOLE_RUNS=5; STARTS=2
  INGEST_MS=2000; INGEST_MAX=1000; STORE_MS=1000
else
  SMALL=1000; MEDIUM=10000; LARGE=100000
  RUNS=20; WARMUP=2; ANCHOR_RUNS=5; WHOLE_RUNS=30; STARTS=5
  INGEST_MS=20000; INGEST_MAX=20000; STORE_MS=3000
fi
# Every DCMTK tool: without it each PDU waits on Nagle + delayed ACK (~40 ms).
export TCP_NODELAY=1

OUT="$ROOT/.bench"
WORK="$OUT/work"
CACHE="$OUT/cache"
rm -rf "$WORK"
mkdir -p "$WORK/hf" "$WORK/parts" "$WORK/logs" "$CACHE"
export BENCH_TMP="$WORK"
TODAY=$("$NODE" -e 'const d=new Date();process.stdout.write(`${d.getFullYear()}${String(d.getMonth()+1).padStart(2,"0")}${String(d.getDate()).padStart(2,"0")}`)')
NONCE=$(printf 'B%05X' $((RANDOM * 32 + RANDOM % 32)))

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# ---- processes we start, and only those, are stopped on exit ----------------------------------------
STARTED=()
stop_pid() { # PID: TERM, wait up to 20 s, then KILL that PID
  local pid=$1 i=0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local pid
  for pid in "${STARTED[@]}"; do stop_pid "$pid"; done
  [ "${BENCH_KEEP_WORK:-0}" = 1 ] || rm -rf "$WORK/site-main/data" "$WORK/site-empty/data" "$WORK/anchor"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { # PORT PID: until something accepts on 127.0.0.1:PORT (15 s), while PID lives
  local i=0
  while [ "$i" -lt 150 ]; do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1; i=$((i + 1))
  done
  return 1
}
for p in $(seq "$BASE" $((BASE + 12))); do port_free "$p" || die "port $p is in use (set BENCH_BASE_PORT)"; done

cat >"$WORK/parts/meta.json" <<JSON
{"quick": $([ "$QUICK" = 1 ] && echo true || echo false), "sizes": {"small": $SMALL, "medium": $MEDIUM, "large": $LARGE},
 "anchorLarge": $([ "$ANCHOR_LARGE" = 1 ] && echo true || echo false), "today": "$TODAY", "nproc": $(nproc),
 "runs": {"perQuery": $RUNS, "anchorPerQuery": $ANCHOR_RUNS, "whole": $WHOLE_RUNS, "starts": $STARTS},
 "dcmtk": "$(findscu --version 2>&1 | head -1 | tr -d '$"')", "node": "$("$NODE" --version)"}
JSON

# ---- the query every measurement sends: station ST01's steps for today --------------------------------
cat >"$WORK/query.dump" <<DUMP
(0008,0005) CS [ISO_IR 100]
(0008,0050) SH []
(0010,0010) PN []
(0010,0020) LO []
(0010,0030) DA []
(0010,0040) CS []
(0020,000d) UI []
(0032,1060) LO []
(0040,0100) SQ
(fffe,e000) -
(0008,0060) CS []
(0040,0001) AE [ST01]
(0040,0002) DA [$TODAY]
(0040,0003) TM []
(0040,0007) LO []
(0040,0009) SH []
(fffe,e00d) -
(fffe,e0dd) -
(0040,1001) SH []
DUMP
dump2dcm +te "$WORK/query.dump" "$WORK/query.dcm"
Q="$WORK/query.dcm"

# responses NAME findscu-args...: count the responses of one query (sanity: every server must answer 50)
RESPONSES="$WORK/parts/responses.txt"
responses() {
  local name=$1; shift
  local dir="$WORK/rsp-$name"
  mkdir -p "$dir"
  findscu -W "$@" "$Q" -X -od "$dir" >"$WORK/logs/findscu-$name.log" 2>&1 || die "findscu $name failed: $(tail -3 "$WORK/logs/findscu-$name.log")"
  local n; n=$(find "$dir" -name 'rsp*.dcm' | wc -l)
  rm -rf "$dir"
  echo "$name $n" >>"$RESPONSES"
  echo "$n"
}
# per_query NAME EXPECTED RUNS WARMUP findscu-args...: hyperfine of one query vs 21 on one association
per_query() {
  local name=$1 want=$2 runs=$3 warmup=$4; shift 4
  local n; n=$(responses "$name" "$@")
  [ "$n" = "$want" ] || die "$name answered $n responses, expected $want"
  log "$name: per-query timing ($runs runs; $n responses per query)"
  hyperfine -N --style none --warmup "$warmup" --runs "$runs" --export-json "$WORK/hf/$name.json" \
    "findscu -W $* $Q" "findscu -W --repeat 21 $* $Q" >"$WORK/logs/hf-$name.log" 2>&1 || die "hyperfine $name: $(tail -5 "$WORK/logs/hf-$name.log")"
}

# ---- raw store: LevelDB synced writes on this disk -------------------------------------------------------
log "store: LevelDB put/batch with sync, ${STORE_MS} ms each"
"$NODE" bench/store-sync.ts --duration-ms "$STORE_MS" --out "$WORK/parts/store-sync.json" >/dev/null

# ---- anchor: wlmscpfs on the same items ----------------------------------------------------------------
SHIM="$OUT/bind-loopback.so"
if [ ! -f "$SHIM" ] || [ bench/bind-loopback.c -nt "$SHIM" ]; then cc -shared -fPIC -O2 -o "$SHIM" bench/bind-loopback.c -ldl; fi
# .wl files depend on the date and the generator only: cache them across runs of the same day.
PLAN_HASH=$(cat bench/worklist-plan.ts bench/anchor-worklist.ts | sha256sum | cut -c1-12)
anchor_items() { # N [LARGER_DIR] -> folder holding WORKLIST/ with the first N items
  local n=$1 larger=${2:-} dir="$CACHE/wl-$TODAY-$PLAN_HASH-$1"
  if [ ! -f "$dir/.complete" ]; then
    rm -rf "$dir"
    if [ -n "$larger" ]; then
      # The first N items of a larger set are the same files: hard links, no second dump2dcm pass.
      mkdir -p "$dir/WORKLIST"; : >"$dir/WORKLIST/lockfile"
      find "$larger/WORKLIST" -name 'wl*.wl' | sort | awk -v n="$n" 'NR <= n' | xargs ln -t "$dir/WORKLIST"
    else
      log "anchor: writing $n .wl files with dump2dcm (2 at a time; cached for today)"
      "$NODE" bench/anchor-worklist.ts --dir "$dir/WORKLIST" --today "$TODAY" --count "$n" --jobs 2 >&2
    fi
    touch "$dir/.complete"
  fi
  echo "$dir"
}
find "$CACHE" -maxdepth 1 -name 'wl-*' ! -name "wl-$TODAY-$PLAN_HASH-*" -exec rm -rf {} + 2>/dev/null || true
ANCHOR_PORT=$((BASE + 10))
ANCHOR_DB="$WORK/anchor"
mkdir -p "$ANCHOR_DB"
anchor_sizes=(small:$SMALL medium:$MEDIUM)
[ "$ANCHOR_LARGE" = 1 ] && anchor_sizes+=(large:$LARGE)
LARGEST=""
[ "$ANCHOR_LARGE" = 1 ] && LARGEST=$(anchor_items "$LARGE")
MEDIUM_DIR=$(anchor_items "$MEDIUM" "$LARGEST")
for entry in "${anchor_sizes[@]}"; do
  label=${entry%%:*}; n=${entry#*:}
  case $label in small) src=$(anchor_items "$n" "$MEDIUM_DIR");; medium) src=$MEDIUM_DIR;; large) src=$LARGEST;; esac
  # One wlmscpfs serves every size: the called AE title picks the folder.
  ae="WL$(echo "$label" | tr '[:lower:]' '[:upper:]')"
  ln -sfn "$src/WORKLIST" "$ANCHOR_DB/$ae"
done
LD_PRELOAD="$SHIM" wlmscpfs -dfp "$ANCHOR_DB" "$ANCHOR_PORT" </dev/null >"$WORK/logs/wlmscpfs.log" 2>&1 &
ANCHOR_PID=$!; STARTED+=("$ANCHOR_PID")
wait_port "$ANCHOR_PORT" "$ANCHOR_PID" || die "wlmscpfs did not listen: $(tail -5 "$WORK/logs/wlmscpfs.log")"
ss -Hltn "sport = :$ANCHOR_PORT" | awk '{print $4}' | grep -qvE '^(127\.|\[::ffff:127\.|\[::1\])' && die "wlmscpfs listens beyond loopback"
for entry in "${anchor_sizes[@]}"; do
  label=${entry%%:*}
  ae="WL$(echo "$label" | tr '[:lower:]' '[:upper:]')"
  runs=$RUNS; [ "$label" = small ] || runs=$ANCHOR_RUNS
  per_query "anchor-$label" 50 "$runs" 1 -aet ST01 -aec "$ae" 127.0.0.1 "$ANCHOR_PORT"
done
stop_pid "$ANCHOR_PID"

# ---- the box: a loaded site and an empty one ----------------------------------------------------------
[ -f daemon/main.ts ] || die "daemon/main.ts does not exist yet: the box half cannot run"
make_site() { # NAME BASE_PORT
  bin/edgectl dev-site --dir "$WORK/site-$1" --base-port "$2" >"$WORK/logs/dev-site-$1.log" 2>&1 || die "edgectl dev-site: $(tail -5 "$WORK/logs/dev-site-$1.log")"
  "$NODE" bench/bench-site.ts --dir "$WORK/site-$1"
}
make_site main "$BASE"
make_site empty $((BASE + 5))
site_value() { "$NODE" -e 'const s=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));process.stdout.write(String(process.argv[2].split(".").reduce((o,k)=>o[k],s)))' "$WORK/site-$1/site.json" "$2"; }
MAIN_PLAIN=$(site_value main box.dicomPlainPort); MAIN_TLS=$(site_value main box.dicomTlsPort)
EMPTY_PLAIN=$(site_value empty box.dicomPlainPort)
BOX_AE=$(site_value main box.aeTitle)
PKI="$WORK/site-main/pki"

BOX_PID=""
start_box() { # NAME -> BOX_PID; waits for the edged.ready line (60 s)
  local name=$1 logf="$WORK/logs/edged-$1.log" i=0
  bin/edged --config "$WORK/site-$name/edge.json" </dev/null >>"$logf" 2>&1 &
  BOX_PID=$!; STARTED+=("$BOX_PID")
  local mark; mark=$(wc -l <"$logf")
  while [ "$i" -lt 600 ]; do
    tail -n +$((mark + 1)) "$logf" | grep -q '"event":"edged.ready"' && return 0
    kill -0 "$BOX_PID" 2>/dev/null || die "edged ($name) exited: $(tail -5 "$logf")"
    sleep 0.1; i=$((i + 1))
  done
  die "edged ($name) not ready after 60 s"
}
load() { # LABEL FROM COUNT: the items [FROM, FROM+COUNT) into the main box over 8 connections
  log "box: loading items $2..$(($2 + $3 - 1)) as ORM^O01 over 8 MLLP/TLS connections"
  "$NODE" bench/hl7-load.ts --site "$WORK/site-main/site.json" --today "$TODAY" --from "$2" --count "$3" \
    --connections 8 --nonce "${NONCE}L" --label "$1" --out "$WORK/parts/$1.json" >/dev/null || die "loading $1: $(cat "$WORK/parts/$1.json" 2>/dev/null)"
}
sample_rss() { # PID OUT STOPFILE: VmRSS every 0.2 s until STOPFILE appears (at most 30 min)
  local i=0
  while [ ! -f "$3" ] && [ "$i" -lt 9000 ] && kill -0 "$1" 2>/dev/null; do
    awk '/^VmRSS:/{print $2}' "/proc/$1/status" >>"$2" 2>/dev/null || true
    sleep 0.2; i=$((i + 1))
  done
}
rss_part() { # PID SAMPLES OUT
  local hwm; hwm=$(awk '/^VmHWM:/{print $2}' "/proc/$1/status")
  local max; max=$(sort -n "$2" | tail -1)
  echo "{\"maxVmRssKb\": ${max:-0}, \"vmHwmKb\": ${hwm:-0}, \"samples\": $(wc -l <"$2")}" >"$3"
}
PLAIN_ARGS=(-aet ST01 -aec "$BOX_AE" 127.0.0.1 "$MAIN_PLAIN")
TLS_ARGS=(+tls "$PKI/ct01.key" "$PKI/ct01.crt" +cf "$PKI/ca.crt" -aet CT01 -aec "$BOX_AE" 127.0.0.1 "$MAIN_TLS")

log "box: starting the main and the empty site"
start_box main; MAIN_PID=$BOX_PID
start_box empty; EMPTY_PID=$BOX_PID
# The fixed cost of a query (association set up, identifier decoded, no match) on the empty box.
per_query box-plain-empty 0 "$RUNS" "$WARMUP" -aet ST01 -aec "$BOX_AE" 127.0.0.1 "$EMPTY_PLAIN"

load load-small 0 "$SMALL"
per_query box-plain-small 50 "$RUNS" "$WARMUP" "${PLAIN_ARGS[@]}"
load load-medium "$SMALL" $((MEDIUM - SMALL))
per_query box-plain-medium 50 "$RUNS" "$WARMUP" "${PLAIN_ARGS[@]}"
per_query box-tls-medium 50 "$RUNS" "$WARMUP" "${TLS_ARGS[@]}"
log "box: whole findscu runs, $MEDIUM items vs the empty box ($WHOLE_RUNS runs each)"
hyperfine -N --style none --warmup "$WARMUP" --runs "$WHOLE_RUNS" --export-json "$WORK/hf/box-whole-medium-vs-empty.json" \
  "findscu -W ${PLAIN_ARGS[*]} $Q" "findscu -W -aet ST01 -aec $BOX_AE 127.0.0.1 $EMPTY_PLAIN $Q" \
  >"$WORK/logs/hf-whole.log" 2>&1 || die "hyperfine whole: $(tail -5 "$WORK/logs/hf-whole.log")"

# Ingest on the other box, so the main box keeps exactly the planned items.
for c in 1 8; do
  log "box: ingest over $c connection(s), ${INGEST_MS} ms or $INGEST_MAX messages"
  "$NODE" bench/hl7-load.ts --site "$WORK/site-empty/site.json" --today "$TODAY" --from $((c * 1000000)) --count "$INGEST_MAX" \
    --duration-ms "$INGEST_MS" --connections "$c" --nonce "${NONCE}I" --label "ingest-$c" --out "$WORK/parts/ingest-$c.json" >/dev/null \
    || log "ingest over $c connection(s) had errors: $(cat "$WORK/parts/ingest-$c.json" 2>/dev/null)"
done
stop_pid "$EMPTY_PID"

: >"$WORK/load-rss.txt"; rm -f "$WORK/load-rss.stop"
sample_rss "$MAIN_PID" "$WORK/load-rss.txt" "$WORK/load-rss.stop" &
SAMPLER=$!
load load-large "$MEDIUM" $((LARGE - MEDIUM))
touch "$WORK/load-rss.stop"; wait "$SAMPLER" || true
rss_part "$MAIN_PID" "$WORK/load-rss.txt" "$WORK/parts/load-rss.json"
stop_pid "$MAIN_PID"

log "box: start-up to ready with $LARGE orders, $STARTS starts"
"$NODE" bench/startup.ts --config "$WORK/site-main/edge.json" --runs "$STARTS" --out "$WORK/parts/startup.json" >/dev/null \
  || die "start-up measurement failed"

log "box: per-query @$LARGE on a freshly started box, sampling its RSS"
start_box main; MAIN_PID=$BOX_PID
: >"$WORK/rss.txt"; rm -f "$WORK/rss.stop"
sample_rss "$MAIN_PID" "$WORK/rss.txt" "$WORK/rss.stop" &
SAMPLER=$!
per_query box-plain-large 50 "$RUNS" "$WARMUP" "${PLAIN_ARGS[@]}"
touch "$WORK/rss.stop"; wait "$SAMPLER" || true
rss_part "$MAIN_PID" "$WORK/rss.txt" "$WORK/parts/rss.json"
stop_pid "$MAIN_PID"

"$NODE" -e 'const fs=require("fs");const o={};for(const l of fs.readFileSync(process.argv[1],"utf8").trim().split("\n")){const [k,v]=l.split(" ");o[k]=Number(v)}fs.writeFileSync(process.argv[2],JSON.stringify(o)+"\n")' \
  "$RESPONSES" "$WORK/parts/responses.json"
echo
"$NODE" bench/report.ts --work "$WORK" --out "$OUT/results.json"
echo
echo "results: $OUT/results.json (raw hyperfine files in $WORK/hf)"

