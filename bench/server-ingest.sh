#!/usr/bin/env bash
# The server's ingest and feed benchmark (crates/server/benches/ingest.rs), release build.
#  1. POST /api/v1/events under wrk (Debian package; 1 thread, 128 connections, 30 s) against
#     the server alone on a SQLite file: requests/s, latency, server CPU and peak RSS;
#  2. the in-process run: concurrent reqwest clients posting EVENTS events, then the feed's
#     latency over ROWS stored events — on SQLite and, when PostgreSQL is available
#     (scripts/test-postgres.sh), on PostgreSQL.
#   bench/server-ingest.sh [EVENTS] [CLIENTS] [ROWS]
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-100000}
clients=${2:-32}
rows=${3:-10000000}
cargo bench -q -p crashscope-server --bench ingest --no-run 2>/dev/null
bin=$(ls -t target/release/deps/ingest-* | grep -v '\.d$' | head -n1)

echo "== wrk: POST /api/v1/events, 1 thread, 128 connections, 30 s"
"$bin" --serve 40 > /tmp/crashscope-serve-bench.log 2>&1 &
server=$!
sleep 2
wrk -t1 -c128 -d30s --latency -s bench/post-event.lua http://127.0.0.1:18099 | grep -E "Requests/sec|Latency|50%|99%"
awk '{printf "server CPU: %.1f s\n", ($14+$15)/100}' "/proc/$server/stat"
wait "$server"
cat /tmp/crashscope-serve-bench.log

echo "== in-process clients, then the feed over $rows events"
pg=$(scripts/test-postgres.sh || true)
CRASHSCOPE_BENCH_POSTGRES=$pg "$bin" --events "$events" --clients "$clients" --rows "$rows"
