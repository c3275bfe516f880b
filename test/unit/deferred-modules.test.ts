// infra/cli/deferred-modules.ts: @pulumi/pulumi loads without @npmcli/arborist, which loads the
// first time it is used, and is then the real module.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import { deferUnusedSdkModules } from "../../infra/cli/deferred-modules";

const arboristPath = require.resolve("@npmcli/arborist", { paths: [path.dirname(require.resolve("@pulumi/pulumi/package.json"))] });
/** The real module's files (the stand-in sits at its entry point, lib/index.js). */
const arboristModules = () =>
  Object.keys(require.cache).filter(
    (file) => file !== arboristPath && file.includes(`${path.sep}@npmcli${path.sep}arborist${path.sep}lib${path.sep}`),
  );

test("@pulumi/pulumi loads without @npmcli/arborist; its first use loads the real module", () => {
  assert.equal(require.cache[require.resolve("@pulumi/pulumi")], undefined, "this test needs a process that has not loaded @pulumi/pulumi");
  deferUnusedSdkModules();
  /* eslint-disable @typescript-eslint/no-require-imports */
  require("@pulumi/pulumi");
  assert.deepEqual(arboristModules(), []);

  // what runtime/closure/codePaths.js holds (TypeScript's __importStar keeps an __esModule module as it is)
  const held = require(arboristPath) as { __esModule?: boolean; Arborist: new (options: { path: string }) => { path: string } };
  assert.equal(held.__esModule, true);
  assert.deepEqual(arboristModules(), []);
  const tree = new held.Arborist({ path: process.cwd() });
  assert.equal(tree.path, process.cwd());
  assert.notDeepEqual(arboristModules(), []);
  assert.equal((require(arboristPath) as { Arborist: unknown }).Arborist, held.Arborist);
  /* eslint-enable @typescript-eslint/no-require-imports */
});
