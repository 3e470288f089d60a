#!/usr/bin/env bash
# The project's test command (README): every crate's unit and integration
# tests, the agency-node suite on SQLite and on PostgreSQL, the policy
# decision tables and the end-to-end federation tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/browser.sh
source scripts/browser.sh
# shellcheck source=scripts/postgres.sh
source scripts/postgres.sh
echo "PostgreSQL suite will use ${EXCHANGE_TEST_POSTGRES_URL%%:*}://…@${EXCHANGE_TEST_POSTGRES_URL##*@}"

cargo test --workspace --locked "$@"
