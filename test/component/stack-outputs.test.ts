// The stack outputs are what Pulumi.yaml's main module (infra/index.ts) exports, not what
// infra/program.ts returns: the README tells users to read several of them (`pulumi stack output
// adoptIds`, `acmeAccountUrl`, `backupRepositoryPassword`, ...), so the two must name the same set.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import { runOffline } from "../../infra/offline/engine";
import { devConfig, ROOT } from "../harness/program-stand-ins";

test("infra/index.ts exports every output infra/program.ts defines, and nothing else", async () => {
  const { config, secretKeys } = devConfig();
  let exported: string[] = [];
  let defined: string[] = [];
  await runOffline(
    () => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const main = require(path.join(ROOT, "infra", "index")) as Record<string, unknown>;
      exported = Object.keys(main).filter((k) => k !== "__esModule");
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { defineMailStack } = require("../../infra/program") as typeof import("../../infra/program");
      defined = Object.keys(defineMailStack()).filter((k) => k !== "stack");
      return {};
    },
    { stack: "dev", config, secretKeys, ipv4: "198.51.100.25", ipv6Network: "2001:db8:1::" },
  );
  assert.ok(defined.length > 5, `the program defines outputs: ${defined.join(", ")}`);
  assert.deepEqual([...exported].sort(), [...defined].sort());
});
