// Invariant 1 (DESIGN.md): replacing the server changes no DNS record, PTR, IP, key or
// certificate request. The real program runs twice under mocks; the second time Hetzner has
// given the server a new id, as after `pulumi up --replace` of the server.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import { runOffline, Secret, type OfflineRun } from "../../infra/offline/engine";
import { configFromStackValues } from "../../infra/cli/plan";
import { readStackFile } from "../../components/config/stack-file";

const devValues = readStackFile(path.resolve(__dirname, "..", "..", "stacks", "Pulumi.dev.yaml"));
const byType = (run: OfflineRun, type: string) => run.resources.filter((r) => r.type === type);

describe("rebuilding the server (a new server id, as after `pulumi up --replace` of the server)", async () => {
  const { config, secretKeys } = configFromStackValues(devValues);
  const runWith = (serverGeneration: number) =>
    runOffline(
      () => {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { defineMailStack } = require("../../infra/program") as typeof import("../../infra/program");
        const { stack: _stack, ...outputs } = defineMailStack();
        return outputs;
      },
      { stack: "dev", config, secretKeys, ipv4: "198.51.100.25", ipv6Network: "2001:db8:1::", serverGeneration },
    );
  const before = await runWith(0);
  const after = await runWith(1);
  const inputsOf = (run: OfflineRun, type: string) =>
    byType(run, type).map((r) => [r.name, JSON.stringify(r.inputs, (_k, v: unknown) => (v instanceof Secret ? { secret: v.value } : v))]);

  test("the rebuild really is a different server", () => {
    const id = (run: OfflineRun) =>
      (byType(run, "command:remote:Command").find((r) => r.name === "mail-wait-for-ssh")!.inputs.triggers as unknown[])[0];
    assert.notDeepEqual(id(after), id(before));
  });

  for (const [what, type] of [
    ["no DNS record", "cloudflare:index/dnsRecord:DnsRecord"],
    ["no PTR", "hcloud:index/rdns:Rdns"],
    ["no primary IP", "hcloud:index/primaryIp:PrimaryIp"],
    ["no volume", "hcloud:index/volume:Volume"],
    ["no key (DKIM, TLS, ACME account, SSH host)", "tls:index/privateKey:PrivateKey"],
    ["not the ACME account", "pulumi-nodejs:dynamic/mailstack:AcmeAccount"],
    ["not the certificate request", "pulumi-nodejs:dynamic/mailstack:AcmeCertificate"],
  ] as const) {
    test(`changes ${what}`, () => {
      assert.deepEqual(inputsOf(after, type), inputsOf(before, type));
    });
  }

  test("the DNS records a preview would compare are identical", () => {
    assert.deepEqual(after.outputs.records, before.outputs.records);
  });
});
