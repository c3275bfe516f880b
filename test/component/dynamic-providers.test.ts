// What the state of the program's dynamic resources holds about the machine that ran it:
// nothing. Each `__provider` (the serialised provider the engine keeps in the state and runs for
// every later preview, update and destroy, wherever they run) loads its logic by package name,
// and no input anywhere names this checkout, this Node, or a TypeScript loader.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import { runOffline, Secret, type OfflineRun } from "../../infra/offline/engine";
import { configFromStackValues } from "../../infra/cli/plan";
import { readStackFile } from "../../components/config/stack-file";

const root = path.resolve(__dirname, "..", "..");

async function runDev(): Promise<OfflineRun> {
  const { config, secretKeys } = configFromStackValues(readStackFile(path.join(root, "stacks", "Pulumi.dev.yaml")));
  return runOffline(
    () => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { defineMailStack } = require("../../infra/program") as typeof import("../../infra/program");
      const { stack: _stack, ...outputs } = defineMailStack();
      return outputs;
    },
    { stack: "dev", config, secretKeys, ipv4: "198.51.100.25", ipv6Network: "2001:db8:1::" },
  );
}

const text = (v: unknown) => JSON.stringify(v, (_k, x: unknown) => (x instanceof Secret ? x.value : x));

describe("the program's dynamic resources in the state (mocks)", async () => {
  const run = await runDev();
  const dynamic = run.resources.filter((r) => r.type.startsWith("pulumi-nodejs:dynamic/"));

  test("exactly AcmeAccount, AcmeCertificate and SshReachable are dynamic resources", () => {
    assert.deepEqual(dynamic.map((r) => r.type).sort(), [
      "pulumi-nodejs:dynamic/mailstack:AcmeAccount",
      "pulumi-nodejs:dynamic/mailstack:AcmeCertificate",
      "pulumi-nodejs:dynamic/mailstack:SshReachable",
    ]);
  });

  for (const [type, specifier] of [
    ["AcmeAccount", "mailstack/providers/acme-account"],
    ["AcmeCertificate", "mailstack/providers/acme-certificate"],
    ["SshReachable", "mailstack/providers/ssh-reachable"],
  ]) {
    test(`${type}'s serialised provider loads "${specifier}" and names no path, no Node binary and no TypeScript loader`, () => {
      const resource = dynamic.find((r) => r.type === `pulumi-nodejs:dynamic/mailstack:${type}`);
      assert.ok(resource, type);
      const provider = String(resource.inputs.__provider);
      assert.ok(provider.includes(`"${specifier}"`), provider);
      assert.equal(provider.includes(root), false, "the checkout's path");
      assert.equal(provider.includes(process.execPath), false, "this Node's path");
      assert.doesNotMatch(provider, /\btsx\b|ts-node|__dirname|__filename|execPath/);
      // no string literal that is an absolute path ("/..." or "C:\...")
      assert.deepEqual(provider.match(/["'`](\/|[A-Za-z]:\\)[^"'`]*["'`]/g), null);
    });
  }

  test("no input of any resource holds the checkout's path or this Node's path", () => {
    const carriers = run.resources.filter((r) => text(r.inputs).includes(root) || text(r.inputs).includes(process.execPath));
    assert.deepEqual(
      carriers.map((r) => `${r.type} ${r.name}`),
      [],
    );
  });
});
