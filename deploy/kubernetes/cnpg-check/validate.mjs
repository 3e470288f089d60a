// Validates every CloudNativePG resource (apiVersion postgresql.cnpg.io/v1)
// in the rendered manifests named on the command line against the
// operator's schemas, as published in @kubernetes-models/cloudnative-pg
// (generated from the operator's CRDs): types, enums, required fields and
// formats. Run by scripts/check-deploy.sh, offline once installed. A kind
// with no schema here is an error, so a new kind is never passed unchecked.
// Exits 1 naming each resource and what is wrong with it.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { Backup } from "@kubernetes-models/cloudnative-pg/postgresql.cnpg.io/v1/Backup";
import { Cluster } from "@kubernetes-models/cloudnative-pg/postgresql.cnpg.io/v1/Cluster";
import { Pooler } from "@kubernetes-models/cloudnative-pg/postgresql.cnpg.io/v1/Pooler";
import { ScheduledBackup } from "@kubernetes-models/cloudnative-pg/postgresql.cnpg.io/v1/ScheduledBackup";

const models = { Backup, Cluster, Pooler, ScheduledBackup };
let checked = 0;
let failed = 0;
for (const file of process.argv.slice(2)) {
  for (const document of parseAllDocuments(readFileSync(file, "utf8"))) {
    if (document.errors.length > 0) {
      console.error(`${file}: ${document.errors[0].message}`);
      failed++;
      continue;
    }
    const resource = document.toJS();
    if (!resource || resource.apiVersion !== "postgresql.cnpg.io/v1") continue;
    const name = `${resource.kind}/${resource.metadata?.name ?? "(no name)"}`;
    const Model = models[resource.kind];
    if (!Model) {
      console.error(`${file}: ${name}: no CloudNativePG schema for kind ${resource.kind}`);
      failed++;
      continue;
    }
    try {
      new Model(resource).validate();
      checked++;
    } catch (error) {
      console.error(`${file}: ${name}: ${error.message}`);
      failed++;
    }
  }
}
console.log(`CloudNativePG resources: ${checked} valid, ${failed} invalid`);
process.exit(failed > 0 ? 1 : 0);
