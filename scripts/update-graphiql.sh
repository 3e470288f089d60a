#!/usr/bin/env bash
# Re-fetches the pinned GraphiQL assets that the exchange-graphiql crate
# embeds (graphiql/assets/) from the npm registry, exactly these versions,
# and checks every file against graphiql/assets/SHA256SUMS. A file that
# differs stops the script before anything is replaced.
#
# To move to another version: change the pins below and the paths in
# graphiql/src/lib.rs, run with --accept-new-sums, review the diff.
set -euo pipefail

cd "$(dirname "$0")/../graphiql/assets"

# package@version  file in the package  ->  directory here
PINS=(
  "graphiql@3.9.0 graphiql.min.js graphiql-3.9.0"
  "graphiql@3.9.0 graphiql.min.css graphiql-3.9.0"
  "graphiql@3.9.0 LICENSE graphiql-3.9.0"
  "react@18.3.1 umd/react.production.min.js react-18.3.1"
  "react@18.3.1 LICENSE react-18.3.1"
  "react-dom@18.3.1 umd/react-dom.production.min.js react-dom-18.3.1"
  "react-dom@18.3.1 LICENSE react-dom-18.3.1"
)

accept_new_sums=false
if [ "${1:-}" = "--accept-new-sums" ]; then accept_new_sums=true; fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for pin in "${PINS[@]}"; do
  read -r package file dir <<<"$pin"
  unpacked="$work/$package"
  if [ ! -d "$unpacked" ]; then
    mkdir -p "$unpacked"
    tarball="$(cd "$work" && npm pack --silent "$package")"
    tar -xzf "$work/$tarball" -C "$unpacked"
  fi
  mkdir -p "$work/out/$dir"
  cp "$unpacked/package/$file" "$work/out/$dir/$(basename "$file")"
done

if $accept_new_sums; then
  (cd "$work/out" && sha256sum */* | sort -k2) >"$work/SHA256SUMS"
  cp "$work/SHA256SUMS" SHA256SUMS
fi
(cd "$work/out" && sha256sum --check --quiet "$OLDPWD/SHA256SUMS")
for pin in "${PINS[@]}"; do
  read -r _ file dir <<<"$pin"
  mkdir -p "$dir"
  cp "$work/out/$dir/$(basename "$file")" "$dir/"
done
sha256sum --check --quiet SHA256SUMS
echo "graphiql assets match SHA256SUMS"
