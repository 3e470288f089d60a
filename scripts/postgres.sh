#!/usr/bin/env bash
# Makes sure a PostgreSQL server is reachable for the PostgreSQL test suite
# and exports EXCHANGE_TEST_POSTGRES_URL (an account allowed to create
# databases: each test creates its own).
#
# Uses EXCHANGE_TEST_POSTGRES_URL as given when it is set. Otherwise starts
# the machine's PostgreSQL cluster (installing Debian's package if it is
# missing), creates the `exchange` role on first use, and removes scratch
# databases that earlier runs left behind (a run that was killed cannot drop
# its own; see exchange_test_kit::scratch).
set -euo pipefail

if [ -n "${EXCHANGE_TEST_POSTGRES_URL:-}" ]; then
  export EXCHANGE_TEST_POSTGRES_URL
  return 0 2>/dev/null || exit 0
fi

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v pg_lsclusters >/dev/null 2>&1; then
  echo "scripts/postgres.sh: installing PostgreSQL from Debian's packages" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

cluster=$(pg_lsclusters --no-header | head -n 1)
if [ -z "$cluster" ]; then
  echo "scripts/postgres.sh: no PostgreSQL cluster on this machine" >&2
  exit 1
fi
read -r version name port status _ <<<"$cluster"
if [ "$status" != "online" ]; then
  # A server that was not shut down cleanly syncs its whole data directory
  # before it accepts connections; pg_ctl's default 60 s wait is not enough
  # on a slow disk, so allow up to 15 minutes.
  as_root pg_ctlcluster "$version" "$name" start -- -t 900
fi

for _ in $(seq 1 60); do
  if as_root su postgres -c "psql -p $port -qtAc 'SELECT 1'" >/dev/null 2>&1; then break; fi
  sleep 1
done

as_root su postgres -c "psql -p $port -qtAc \"DO \\\$\\\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'exchange') THEN
    CREATE ROLE exchange LOGIN CREATEDB PASSWORD 'exchange-test';
  END IF;
END \\\$\\\$;\"" >/dev/null

# A test's scratch database is dropped WITH (FORCE), which must end every
# session on it: an autovacuum worker too, which belongs to no role, so only
# a member of pg_signal_backend may end it. Without this, a drop that met
# autovacuum failed and left the database behind (seen 2026-11-23).
as_root su postgres -c "psql -p $port -qtAc 'SET client_min_messages = warning; GRANT pg_signal_backend TO exchange'" >/dev/null

# Scratch databases (exchange_{test,e2e,bench}_<32 hex>) over an hour old
# belong to no running test: drop them. One still in use is left alone.
stale=$(as_root su postgres -c "psql -p $port -qtA" <<'SQL'
SELECT count(*) FROM pg_database
WHERE datname ~ '^exchange_(test|e2e|bench)_[0-9a-f]{32}$'
  AND (pg_stat_file('base/' || oid || '/PG_VERSION', true)).modification < now() - interval '1 hour';
SQL
) || stale=0
if [ "${stale:-0}" -gt 0 ]; then
  echo "scripts/postgres.sh: dropping $stale scratch databases left by earlier runs" >&2
  as_root su postgres -c "psql -p $port -qtA" >/dev/null 2>&1 <<'SQL' || true
SELECT format('DROP DATABASE IF EXISTS %I', datname) FROM pg_database
WHERE datname ~ '^exchange_(test|e2e|bench)_[0-9a-f]{32}$'
  AND (pg_stat_file('base/' || oid || '/PG_VERSION', true)).modification < now() - interval '1 hour'
\gexec
SQL
fi

export EXCHANGE_TEST_POSTGRES_URL="postgres://exchange:exchange-test@127.0.0.1:$port/postgres"
