#!/usr/bin/env bash
# Runs `hive-bench`: the exchange's gateway side by side with Hive Router
# 0.0.41 in front of the same agency node (bench/src/bin/hive_bench.rs;
# figures in docs/benchmarks.md). Run by hand, never in CI.
#
#   bash scripts/hive-bench.sh
#
# 1. Builds Hive Router 0.0.41 from crates.io once, into a cache outside the
#    workspace (${XDG_CACHE_HOME:-$HOME/.cache}/exchange/hive-router-0.0.41),
#    and reuses it when present. The build takes a long time on two cores.
# 2. Installs @apollo/composition, pinned by bench/hive/package-lock.json,
#    with `npm ci` into the same cache (one directory per lock file), and
#    composes the node's subgraph SDL (schema/subgraph.graphql, which the
#    node's contract test keeps equal to what a node serves) into a
#    supergraph with bench/hive/compose.cjs.
# 3. Builds and runs the release `hive-bench` binary with both.
#
# Builds run under `nice -n 10` (the machine is shared); the bench itself
# does not.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

hive_version=0.0.41
cache="${XDG_CACHE_HOME:-$HOME/.cache}/exchange"
hive_root="$cache/hive-router-$hive_version"
hive_router="$hive_root/bin/hive_router"

for tool in cargo node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "scripts/hive-bench.sh: $tool is needed and was not found" >&2
    exit 1
  fi
done

if [ ! -x "$hive_router" ]; then
  echo "scripts/hive-bench.sh: building Hive Router $hive_version into $hive_root (once)" >&2
  nice -n 10 cargo install --locked hive-router --version "$hive_version" --root "$hive_root"
fi

# The composer, installed once per version of the lock file.
lock_sum=$(cat bench/hive/package.json bench/hive/package-lock.json | sha256sum | cut -c1-16)
compose_dir="$cache/hive-compose-$lock_sum"
if [ ! -f "$compose_dir/.installed" ]; then
  echo "scripts/hive-bench.sh: installing @apollo/composition into $compose_dir (once)" >&2
  rm -rf "$compose_dir"
  mkdir -p "$compose_dir"
  cp bench/hive/package.json bench/hive/package-lock.json "$compose_dir/"
  (cd "$compose_dir" && nice -n 10 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  touch "$compose_dir/.installed"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The URL is a placeholder: hive-bench points the router at the node it
# starts (override_subgraph_urls). The subgraph name must be the bench's
# (SUBGRAPH in bench/src/bin/hive_bench.rs).
NODE_PATH="$compose_dir/node_modules" node bench/hive/compose.cjs \
  schema/subgraph.graphql agency http://127.0.0.1:9/graphql "$work/supergraph.graphql"

nice -n 10 cargo build --release --locked -p exchange-bench --bin hive-bench
target_dir=$(cargo metadata --format-version 1 --no-deps --locked |
  node -e 'let s = ""; process.stdin.on("data", d => s += d).on("end", () => console.log(JSON.parse(s).target_directory))')

RUST_BACKTRACE=0 "$target_dir/release/hive-bench" \
  --hive-router "$hive_router" --supergraph "$work/supergraph.graphql"
