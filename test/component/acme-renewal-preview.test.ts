// Issue 13 item 7: the preview of a `pulumi up` in which only the certificate is due for renewal.
//
// What the engine gives the program in that preview (research/engine.md 2 and 10): resources
// without changes (a SameStep) return their old outputs; the AcmeCertificate's diff says update,
// and since the Node dynamic provider host has no preview support the engine answers with the
// checked inputs as outputs, so every output-only property (certificatePem, notAfter, ...) is
// unknown to the program. This test runs the real program under Pulumi's mocks in preview mode
// with exactly those answers and checks what the preview would show as changing: the
// certificate, and the deploy of the new certificate (its file manifest and the install), and
// nothing else: no DNS record (CAA pins the account, which a renewal does not touch), no key, no
// account, no server.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { configFromStackValues } from "../../infra/cli/plan";
import { mockProvider } from "../../infra/offline/mock-provider";
import { readStackFile } from "../../components/config/stack-file";
import { containsUnknown } from "../../components/providers/engine-values";

const root = path.resolve(__dirname, "..", "..");
const ACCOUNT_URL = "https://acme-staging-v02.api.letsencrypt.org/acme/acct/1234";

interface Registration {
  type: string;
  name: string;
  /** the inputs on the wire: unknowns as the sentinel string */
  inputs: Record<string, unknown>;
}

/** The program in a preview where every resource is unchanged except the AcmeCertificate (an update). */
async function previewOfRenewal(): Promise<Registration[]> {
  const base = mockProvider({ ipv4: "198.51.100.25", ipv6Network: "2001:db8:1::", acmeAccountUrl: ACCOUNT_URL });
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        // Preview of an update through the dynamic provider host: outputs = the checked inputs.
        if (args.type === "pulumi-nodejs:dynamic/mailstack:AcmeCertificate") return { id: "mail.example.org-0a1b2c3d", state: args.inputs };
        // Unchanged commands keep their old outputs, stdout included (the machine id, the install summary).
        if (args.type === "command:remote:Command") {
          return { id: `${args.name}-id`, state: { ...args.inputs, stdout: `${args.name} output\n`, stderr: "" } };
        }
        return base.newResource(args);
      },
      call: (args) => base.call(args),
    },
    "mailstack",
    "dev",
    true,
  );
  const { config, secretKeys } = configFromStackValues(readStackFile(path.join(root, "stacks", "Pulumi.dev.yaml")));
  pulumi.runtime.setAllConfig(config, secretKeys);
  const registrations: Registration[] = [];
  const monitor = pulumi.runtime.getMonitor() as unknown as {
    registerResource(
      req: { getType(): string; getName(): string; getObject(): { toJavaScript(): Record<string, unknown> } | undefined },
      cb: unknown,
    ): unknown;
  };
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, cb) => {
    registrations.push({ type: req.getType(), name: req.getName(), inputs: req.getObject()?.toJavaScript() ?? {} });
    return register(req, cb);
  };
  await pulumi.runtime.runInPulumiStack(async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { defineMailStack } = require("../../infra/program") as typeof import("../../infra/program");
    const { stack: _stack, ...outputs } = defineMailStack();
    return outputs;
  });
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  await (require("@pulumi/pulumi/runtime/settings") as { waitForRPCs(): Promise<void> }).waitForRPCs();
  return registrations.filter((r) => r.type !== "pulumi:pulumi:Stack");
}

describe("preview of a pending certificate renewal (mocks, preview mode)", async () => {
  const registrations = await previewOfRenewal();
  const withUnknowns = registrations.filter((r) => containsUnknown(r.inputs)).map((r) => `${r.type} ${r.name}`);

  test("no DNS record has an unknown input: every CAA record still names the same account", () => {
    const records = registrations.filter((r) => r.type === "cloudflare:index/dnsRecord:DnsRecord");
    assert.ok(records.length > 40, `${records.length} records`);
    assert.deepEqual(
      records.filter((r) => containsUnknown(r.inputs)).map((r) => r.name),
      [],
    );
    const caa = records.filter((r) => r.inputs.type === "CAA" && (r.inputs.data as { tag: string }).tag === "issue");
    assert.equal(caa.length, 2);
    for (const r of caa) assert.match(String((r.inputs.data as { value: string }).value), new RegExp(`accounturi=${ACCOUNT_URL};`));
  });

  test("only the deploy of the new certificate waits on it: the install step, which gets the manifest on stdin", () => {
    assert.deepEqual(withUnknowns.sort(), ["command:remote:Command mail-install"]);
  });

  test("the certificate's own inputs are all known (the account URL comes from the unchanged AcmeAccount)", () => {
    const certificate = registrations.find((r) => r.type === "pulumi-nodejs:dynamic/mailstack:AcmeCertificate");
    assert.ok(certificate);
    assert.equal(certificate.inputs.accountUrl, ACCOUNT_URL);
    assert.equal(containsUnknown(certificate.inputs), false);
  });
});
