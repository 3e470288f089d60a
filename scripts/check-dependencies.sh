#!/usr/bin/env bash
# The rules the dependency tree must keep, checked with `cargo tree`; fails
# and prints the path that brought a forbidden crate in. Run by .ci/run; by
# hand: bash scripts/check-dependencies.sh
#
# 1. One crypto backend: aws-lc-rs. `ring` is nowhere in the workspace.
# 2. The gateway (its normal, shipped tree) links no node code, policy
#    engine, password hashing, OpenID client or console: it decides no
#    disclosure, hashes no secret and signs no one in. docs/architecture.md
#    ("Dependencies") says why. Its own pages (the statistics dashboard)
#    use askama and fluent, which are allowed.
set -euo pipefail
cd "$(dirname "$0")/.."

status=0

# The crate names in a `cargo tree` listing, one per line.
names() {
  cargo tree --locked --prefix none "$@" | awk '{print $1}' | sort -u
}

workspace=$(names --workspace)
gateway=$(names -p exchange-gateway -e normal)
for listing in "$workspace" "$gateway"; do
  if ! grep -qx exchange-gateway <<<"$listing"; then
    echo "check-dependencies: cargo tree did not list exchange-gateway; cannot check" >&2
    exit 1
  fi
done

if grep -qx ring <<<"$workspace"; then
  echo "check-dependencies: ring is in the workspace's tree (one crypto backend: aws-lc-rs):" >&2
  cargo tree --workspace --locked -i ring >&2 || true
  status=1
fi
gateway_forbidden=(agency-node exchange-policies cedar-policy argon2 openidconnect exchange-console)
for crate in "${gateway_forbidden[@]}"; do
  if grep -qx "$crate" <<<"$gateway"; then
    echo "check-dependencies: exchange-gateway links $crate, which it must not; the path:" >&2
    cargo tree -p exchange-gateway -e normal --locked -i "$crate" >&2 || true
    status=1
  fi
done

if [ "$status" -eq 0 ]; then
  echo "check-dependencies: no ring in the workspace; exchange-gateway links none of: ${gateway_forbidden[*]}"
fi
exit "$status"
