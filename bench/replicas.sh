#!/usr/bin/env bash
# Several server replicas on one PostgreSQL, side by side with one, in one run (issue 23):
#  1. POST /api/v1/events under wrk (Debian package): one replica with 2 wrk connections
#     sets x 64, then two replicas each taking half of the same load — requests/s and
#     latency percentiles as wrk reports them;
#  2. the feed (GET /api/v1/events?limit=100) through the standby while the leader ingests;
#  3. leader takeover: kill -9 of the replica holding the engine's lease, then the time
#     until the other says it leads (its /metrics), with --eval-interval as given.
#   CRASHSCOPE=target/release/crashscope bench/replicas.sh [SECONDS] [EVAL_INTERVAL]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
interval=${2:-1s}
bin=${CRASHSCOPE:-target/release/crashscope}
pg=$(scripts/test-postgres.sh)
[ -n "$pg" ] || { echo "no PostgreSQL (scripts/test-postgres.sh needs root)" >&2; exit 1; }
db="crashscope_bench_$$"
admin_base=${pg%/*}
psql "$pg" -qc "CREATE DATABASE $db" >/dev/null
url="$admin_base/$db"
work=$(mktemp -d)
token=bench-token-0123456789abcdef
echo "$token" > "$work/tokens"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; psql "$pg" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

serve() { # name port
  "$bin" --data-dir "$work/$1" serve --listen "127.0.0.1:$2" --store "$url" \
    --token-file "$work/tokens" --eval-interval "$interval" > "$work/$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$2/healthz" >/dev/null && return; sleep 0.1; done
  echo "replica $1 did not start:" >&2; cat "$work/$1.log" >&2; exit 1
}
leads() { curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$1/metrics" | grep -q '^crashscope_engine_leader 1$'; }
load() { # port connections
  wrk -t1 -c"$2" -d"${secs}s" --latency -s bench/post-event.lua "http://127.0.0.1:$1" \
    -H "Authorization: Bearer $token" > "$work/wrk-$1.txt"
}
report() { grep -E "Requests/sec|^ +(50|99)%" "$1" | tr -s ' ' | tr '\n' ' '; echo; }

serve a 18201
echo "== one replica: wrk 1 thread, 128 connections, ${secs} s"
load 18201 128
report "$work/wrk-18201.txt"

serve b 18202
echo "== two replicas on the same store: wrk 1 thread, 64 connections each, ${secs} s, at once"
load 18201 64 & w1=$!
load 18202 64 & w2=$!
wait $w1 $w2
echo -n "replica a: "; report "$work/wrk-18201.txt"
echo -n "replica b: "; report "$work/wrk-18202.txt"
awk '/Requests\/sec/ {s += $2} END {printf "together: %.0f requests/s\n", s}' "$work"/wrk-1820[12].txt

echo "== the feed through each replica while the other ingests (wrk, 16 connections, ${secs} s)"
cat > "$work/feed.lua" <<'LUA'
wrk.path = "/api/v1/events?limit=100"
LUA
load 18201 64 & w1=$!
wrk -t1 -c16 -d"${secs}s" --latency -s "$work/feed.lua" "http://127.0.0.1:18202" \
  -H "Authorization: Bearer $token" > "$work/feed.txt"
wait $w1
echo -n "feed via b: "; report "$work/feed.txt"
echo "events stored: $(psql "$url" -qAtc 'select count(*) from events')"

echo "== leader takeover after kill -9 (eval interval $interval)"
if leads 18201; then leader=0 port=18202; else leader=1 port=18201; fi
start=$(date +%s.%N)
kill -9 "${pids[$leader]}"
until leads "$port"; do sleep 0.05; done
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" 'BEGIN {printf "the standby leads %.2f s after the kill\n", e - s}'
