// Composes the agency node's subgraph SDL into a supergraph SDL for Hive
// Router, with @apollo/composition (pinned in package.json beside this
// file). Used by scripts/hive-bench.sh only; nothing here is shipped.
//
//   node compose.cjs <subgraph.graphql> <subgraph name> <subgraph url> <out>
//
// The URL is a placeholder: the bench points Hive Router at the node it
// starts with `override_subgraph_urls`. The SDL must carry the federation
// `@link` (schema/subgraph.graphql does); one is added, in memory only, if
// it does not. Exits non-zero with the composer's errors if composition
// fails.
"use strict";

const fs = require("node:fs");
const { composeServices } = require("@apollo/composition");
const { parse } = require("graphql");

const FEDERATION_LINK =
  'extend schema @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@key", "@shareable"])\n';

function main() {
  const [sdlPath, name, url, out] = process.argv.slice(2);
  if (!sdlPath || !name || !url || !out) {
    console.error("usage: node compose.cjs <subgraph.graphql> <name> <url> <out>");
    process.exit(2);
  }
  let sdl = fs.readFileSync(sdlPath, "utf8");
  if (!/@link\s*\(\s*url:\s*"https:\/\/specs\.apollo\.dev\/federation\//.test(sdl)) {
    sdl += "\n" + FEDERATION_LINK;
  }
  const result = composeServices([{ name, url, typeDefs: parse(sdl) }]);
  if (result.errors && result.errors.length > 0) {
    console.error(`composing ${sdlPath} failed:`);
    for (const error of result.errors) {
      console.error(`  ${error.message}`);
    }
    process.exit(1);
  }
  for (const hint of result.hints || []) {
    console.error(`hint: ${hint.definition.code}: ${hint.message}`);
  }
  fs.writeFileSync(out, result.supergraphSdl);
}

main();
