#!/usr/bin/env bash
# Starts Debian's PostgreSQL for the tests and prints the URL they use (a role that may create
# databases: each test makes its own). Idempotent. Prints nothing when it cannot (not root, no
# PostgreSQL installed): the tests then skip their PostgreSQL half, or fail under CI.
set -euo pipefail
# Only the URL goes to stdout: the caller captures it. pg_ctlcluster talks on stdout
# ("Removed stale pid file." on a machine restored from an image), so everything else goes to stderr.
exec 3>&1 1>&2
if [ -n "${CRASHSCOPE_TEST_POSTGRES:-}" ]; then
  echo "$CRASHSCOPE_TEST_POSTGRES" >&3
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v pg_lsclusters >/dev/null; then
  echo "test-postgres: not root or PostgreSQL not installed; PostgreSQL tests will skip" >&2
  exit 0
fi
read -r version cluster port status _ < <(pg_lsclusters --no-header | head -n1) || true
if [ -z "${version:-}" ]; then
  version=$(ls /usr/lib/postgresql | sort -n | tail -n1)
  pg_createcluster "$version" main 3>&- >/dev/null
  read -r version cluster port status _ < <(pg_lsclusters --no-header | head -n1)
fi
if [ "$status" != online ]; then
  pg_ctlcluster "$version" "$cluster" start 3>&-
fi
psql_admin() { runuser -u postgres -- psql -p "$port" -qAtc "$1"; }
for _ in $(seq 50); do psql_admin "select 1" >/dev/null 2>&1 && break; sleep 0.2; done
if [ "$(psql_admin "select 1 from pg_roles where rolname = 'crashscope'")" != 1 ]; then
  psql_admin "CREATE ROLE crashscope LOGIN PASSWORD 'crashscope' CREATEDB"
fi
if [ "$(psql_admin "select 1 from pg_database where datname = 'crashscope_test'")" != 1 ]; then
  psql_admin "CREATE DATABASE crashscope_test OWNER crashscope"
fi
echo "postgres://crashscope:crashscope@127.0.0.1:$port/crashscope_test" >&3
