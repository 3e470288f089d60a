#!/usr/bin/env bash
# Fails if the gateway's normal (shipped) dependency tree holds a crate it
# must not link: the node's code, the policy engine, password hashing or
# an OpenID client. docs/architecture.md ("Dependencies") says why. Run by
# .ci/run; by hand: bash scripts/check-gateway-deps.sh
set -euo pipefail
cd "$(dirname "$0")/.."

forbidden=(agency-node exchange-policies cedar-policy argon2 openidconnect exchange-console)

tree=$(cargo tree -p exchange-gateway -e normal --locked --prefix none | awk '{print $1}' | sort -u)
if ! grep -qx exchange-gateway <<<"$tree"; then
  echo "check-gateway-deps: cargo tree did not list exchange-gateway; cannot check" >&2
  exit 1
fi
status=0
for crate in "${forbidden[@]}"; do
  if grep -qx "$crate" <<<"$tree"; then
    echo "check-gateway-deps: exchange-gateway links $crate, which it must not; the path:" >&2
    cargo tree -p exchange-gateway -e normal --locked -i "$crate" >&2 || true
    status=1
  fi
done
if [ "$status" -eq 0 ]; then
  echo "check-gateway-deps: exchange-gateway links none of: ${forbidden[*]}"
fi
exit "$status"
