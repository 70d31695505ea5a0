#!/usr/bin/env bash
# The server's ingest and feed benchmark (crates/server/benches/ingest.rs), release build, on
# SQLite and — when PostgreSQL is available (scripts/test-postgres.sh) — on PostgreSQL.
#   bench/server-ingest.sh [EVENTS] [CLIENTS] [ROWS]
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-100000}
clients=${2:-32}
rows=${3:-10000000}
pg=$(scripts/test-postgres.sh || true)
export CRASHSCOPE_BENCH_POSTGRES=$pg
/usr/bin/time -v cargo bench -q -p crashscope-server --bench ingest -- \
  --events "$events" --clients "$clients" --rows "$rows" 2> >(grep -E "Maximum resident|Elapsed|Percent of CPU" >&2)
