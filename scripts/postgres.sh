#!/usr/bin/env bash
# Makes sure a PostgreSQL server is reachable for the PostgreSQL test suite
# and exports EXCHANGE_TEST_POSTGRES_URL (an account allowed to create
# databases: each test creates its own).
#
# Uses EXCHANGE_TEST_POSTGRES_URL as given when it is set. Otherwise starts
# the machine's PostgreSQL cluster (installing Debian's package if it is
# missing) and creates the `exchange` role on first use.
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
  as_root pg_ctlcluster "$version" "$name" start
fi

for _ in $(seq 1 30); do
  if as_root su postgres -c "psql -p $port -qtAc 'SELECT 1'" >/dev/null 2>&1; then break; fi
  sleep 1
done

as_root su postgres -c "psql -p $port -qtAc \"DO \\\$\\\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'exchange') THEN
    CREATE ROLE exchange LOGIN CREATEDB PASSWORD 'exchange-test';
  END IF;
END \\\$\\\$;\"" >/dev/null

export EXCHANGE_TEST_POSTGRES_URL="postgres://exchange:exchange-test@127.0.0.1:$port/postgres"
