#!/usr/bin/env bash
# Tests scripts/postgres.sh's sweep of scratch databases that killed runs
# left behind: of three databases made here, a scratch one whose files are
# two hours old is dropped, a scratch one made just now is kept (a running
# test may be using it), and one whose name is not a scratch name is kept
# however old. scripts/test.sh runs it when postgres.sh manages the
# machine's own cluster (always in CI); it needs root (or sudo), as
# postgres.sh does, to age a file in the server's data directory.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# The cluster online and the test account in place.
(unset EXCHANGE_TEST_POSTGRES_URL; source scripts/postgres.sh)

port=$(pg_lsclusters --no-header | head -n 1 | awk '{print $3}')
# Runs the SQL on standard input as the server's superuser; prints rows.
admin_sql() { as_root su postgres -c "psql -p $port -qtA -v ON_ERROR_STOP=1"; }
random_hex() { od -An -tx1 -N16 /dev/urandom | tr -d ' \n'; }
exists() {
  [ "$(echo "SELECT count(*) FROM pg_database WHERE datname = '$1'" | admin_sql)" = 1 ]
}
age_by_two_hours() {
  local oid
  oid=$(echo "SELECT oid FROM pg_database WHERE datname = '$1'" | admin_sql)
  as_root touch -d '2 hours ago' "$data_dir/base/$oid/PG_VERSION"
}

stale="exchange_test_$(random_hex)"
fresh="exchange_test_$(random_hex)"
other="sweep_check_$(random_hex)"
cleanup() {
  printf 'DROP DATABASE IF EXISTS %s;\n' "$stale" "$fresh" "$other" | admin_sql >/dev/null 2>&1 || true
}
trap cleanup EXIT

printf 'CREATE DATABASE %s;\n' "$stale" "$fresh" "$other" | admin_sql >/dev/null
data_dir=$(echo "SHOW data_directory" | admin_sql)
age_by_two_hours "$stale"
age_by_two_hours "$other"

(unset EXCHANGE_TEST_POSTGRES_URL; source scripts/postgres.sh)

failed=0
if exists "$stale"; then
  echo "FAILED: a scratch database two hours old ($stale) was not dropped" >&2
  failed=1
fi
if ! exists "$fresh"; then
  echo "FAILED: a scratch database made just now ($fresh) was dropped" >&2
  failed=1
fi
if ! exists "$other"; then
  echo "FAILED: a database without a scratch name ($other) was dropped" >&2
  failed=1
fi
if [ "$failed" = 0 ]; then
  echo "scripts/postgres.sh sweep: the stale scratch database was dropped, the fresh one and the other name kept: ok"
fi
exit "$failed"
