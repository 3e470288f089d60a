#!/usr/bin/env bash
# The project's test command (README): every crate's unit and integration
# tests, the agency-node suite on SQLite and on PostgreSQL, the policy
# decision tables, the end-to-end federation tests, and the deployment
# files (scripts/check-deploy.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/browser.sh
source scripts/browser.sh
given_postgres_url=${EXCHANGE_TEST_POSTGRES_URL:-}
# shellcheck source=scripts/postgres.sh
source scripts/postgres.sh
echo "PostgreSQL suite will use ${EXCHANGE_TEST_POSTGRES_URL%%:*}://…@${EXCHANGE_TEST_POSTGRES_URL##*@}"

# postgres.sh's sweep of stale scratch databases works on the machine's own
# cluster, which it manages unless a server was given (never in CI).
if [ -z "$given_postgres_url" ]; then
  bash scripts/test-postgres-sweep.sh
else
  echo "scripts/test-postgres-sweep.sh not run: EXCHANGE_TEST_POSTGRES_URL names a server postgres.sh does not manage"
fi

# The deployment files (Kubernetes manifests, Containerfile, systemd units),
# offline; skipped only when a test filter was given (a developer's run of
# some tests), never in CI, which passes none.
if [ $# -eq 0 ]; then
  bash scripts/check-deploy.sh
fi

cargo test --workspace --locked "$@"
