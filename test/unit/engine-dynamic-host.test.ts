// The Node dynamic provider host stand-in (infra/offline/providers/dynamic-host.ts) under the offline
// engine: what reaches a dynamic provider's check/diff/create/update, in preview and in up, as
// @pulumi/pulumi's cmd/dynamic-provider host and the engine's plugin client do it.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { simulate, type SimulateResult } from "../../infra/offline/simulate";
import { Secret, Unknown, UNKNOWN_SENTINEL, type Checkpoint } from "../../infra/offline/model";
import { dynamicProviderHost } from "../../infra/offline/providers/dynamic-host";
import { FakeProvider, FakeResource } from "../harness/fake-stand-ins";

const projectDir = fs.mkdtempSync(path.join(os.tmpdir(), "dynamic-host-"));
fs.writeFileSync(path.join(projectDir, "helper.js"), 'module.exports = { where: "the project directory" };\n');

const host = () => dynamicProviderHost({ projectDir });
const run = (
  mode: "preview" | "up",
  program: () => unknown,
  checkpoint?: Checkpoint,
  fake = new FakeProvider("fake", { computed: { out: () => "known" } }),
) => simulate({ mode, stack: "test", project: "proj", program, providers: [host(), fake], checkpoint, parallel: 1, projectDir });

interface Seen {
  calls: { method: string; olds?: Record<string, unknown>; news?: Record<string, unknown> }[];
  configures: number;
  diffAnswer?: unknown;
}
const seen = (): Seen => ((globalThis as Record<string, unknown>).__dynamicHostTest ??= { calls: [], configures: 0 }) as Seen;
const reset = () => Object.assign(seen(), { calls: [], configures: 0, diffAnswer: undefined });
const stepsOf = (r: SimulateResult) =>
  r.steps.filter((s) => s.type !== "pulumi:pulumi:Stack" && s.op !== "same").map((s) => `${s.op} ${s.urn.split("::").pop()}`);

// The providers are serialised by Pulumi's closure serialiser and evaluated by the host: they reach
// the test only through globalThis.
const strictProvider: pulumi.dynamic.ResourceProvider = {
  async configure() {
    (globalThis as any).__dynamicHostTest.configures++;
  },
  async check(olds: any, news: any) {
    (globalThis as any).__dynamicHostTest.calls.push({ method: "check", olds, news });
    if (typeof news.key !== "string" || !news.key.includes("PRIVATE KEY")) {
      return { inputs: news, failures: [{ property: "key", reason: "key: must be a PEM private key" }] };
    }
    return { inputs: news };
  },
  async diff(_id: string, olds: any, news: any) {
    (globalThis as any).__dynamicHostTest.calls.push({ method: "diff", olds, news });
    return (globalThis as any).__dynamicHostTest.diffAnswer ?? { changes: false };
  },
  async create(inputs: any) {
    (globalThis as any).__dynamicHostTest.calls.push({ method: "create", news: inputs });
    return { id: "cert-1", outs: { ...inputs, accountUrl: "https://ca.example/acct/1" } };
  },
};

const noUpdateProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: any) {
    return { id: "plain-1", outs: { ...inputs, computed: "from-create" } };
  },
};

class Certificate extends pulumi.dynamic.Resource {
  declare readonly accountUrl: pulumi.Output<string>;
  declare readonly key: pulumi.Output<string>;
  constructor(name: string, args: Record<string, pulumi.Input<unknown>>, provider = strictProvider) {
    super(provider, name, { accountUrl: undefined, ...args }, {});
  }
}

const PEM = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n";

describe("the dynamic provider host in preview", () => {
  test("check receives the unknown sentinel as a literal string; its failure fails the registration with the engine's message", async () => {
    reset();
    const r = await run(
      "preview",
      () => {
        const key = new FakeResource("Key", "account-key", {});
        new Certificate("cert", { key: key.out, names: ["mail.example.org"] });
      },
      undefined,
      new FakeProvider("fake", { computed: { out: () => PEM } }),
    );
    assert.equal(r.failed, true);
    assert.equal(seen().calls[0].news!.key, UNKNOWN_SENTINEL);
    const urn = "urn:pulumi:test::proj::pulumi-nodejs:dynamic:Resource::cert";
    assert.deepEqual(
      r.diagnostics.map((d) => d.message),
      [
        "pulumi-nodejs:dynamic:Resource resource 'cert': property key value output<string>{} has a problem: key: must be a PEM private key",
        `resource ${urn} is invalid`,
      ],
    );
    assert.deepEqual(stepsOf(r), ["create account-key"]);
  });

  test("secrets reach check as plain values and come back marked secret", async () => {
    reset();
    const r = await run("preview", () => void new Certificate("cert", { key: pulumi.secret(PEM) }));
    assert.deepEqual(r.diagnostics, []);
    assert.equal(seen().calls[0].news!.key, PEM);
    const step = r.steps.find((s) => s.urn.endsWith("::cert"))!;
    assert.ok(step.newInputs!.key instanceof Secret);
  });

  test("create is not sent to the host in preview: outputs are the checked inputs, output-only properties unknown", async () => {
    reset();
    const r = await run("preview", () => {
      const cert = new Certificate("cert", { key: PEM });
      new FakeResource("Thing", "uses", { url: cert.accountUrl, key: cert.key });
    });
    assert.deepEqual(r.diagnostics, []);
    assert.deepEqual(
      seen().calls.map((c) => c.method),
      ["check"],
    );
    const uses = r.resources.find((x) => x.name === "uses")!;
    assert.equal(uses.inputs.url, Unknown);
    assert.equal(uses.inputs.key, PEM);
  });

  test("the provider's own require resolves from the project directory, as the host started there does", async () => {
    const lookup: pulumi.dynamic.ResourceProvider = {
      async check(_olds: any, news: any) {
        // resolved by the host's module, relative to the project directory
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        return { inputs: { ...news, where: require("./helper.js").where } };
      },
      async create(inputs: any) {
        return { id: "x", outs: inputs };
      },
    };
    const r = await run("preview", () => void new Certificate("cert", { key: PEM }, lookup));
    assert.deepEqual(r.diagnostics, []);
    assert.equal(r.steps.find((s) => s.urn.endsWith("::cert"))!.newInputs!.where, "the project directory");
  });
});

describe("the dynamic provider host between runs", () => {
  test("diff gets the old outputs; only changes, replaces and deleteBeforeReplace cross the host", async () => {
    reset();
    const program = () => void new Certificate("cert", { key: PEM });
    const first = await run("up", program);
    assert.deepEqual(first.diagnostics, []);
    assert.equal(first.checkpoint.resources.find((s) => s.urn.endsWith("::cert"))!.id, "cert-1");

    seen().diffAnswer = { changes: false, replaces: ["key"], stables: ["accountUrl"] };
    const unchanged = await run("preview", program, first.checkpoint);
    const diff = seen().calls.find((c) => c.method === "diff")!;
    assert.equal(diff.olds!.accountUrl, "https://ca.example/acct/1");
    assert.deepEqual(stepsOf(unchanged), []);

    seen().diffAnswer = { changes: true, replaces: ["key"], deleteBeforeReplace: true };
    const replaced = await run("preview", program, first.checkpoint);
    assert.deepEqual(stepsOf(replaced), ["delete-replaced cert", "create-replacement cert"]);

    // changes left undefined: DIFF_UNKNOWN, the engine compares the inputs, which are equal
    seen().diffAnswer = { replaces: ["key"] };
    assert.deepEqual(stepsOf(await run("preview", program, first.checkpoint)), []);
  });

  test("a provider is deserialised and configured once per serialized string", async () => {
    reset();
    await run("preview", () => {
      new Certificate("one", { key: PEM });
      new Certificate("two", { key: PEM });
    });
    assert.equal(seen().configures, 1);
  });

  test("without diff, a changed input is an update and never a replacement; without update, the update drops the old outputs", async () => {
    const program = (size: number) => () => void new Certificate("plain", { key: PEM, size }, noUpdateProvider);
    const first = await run("up", program(1));
    const before = first.checkpoint.resources.find((s) => s.urn.endsWith("::plain"))!;
    assert.equal(before.outputs.computed, "from-create");
    const second = await run("up", program(2), first.checkpoint);
    assert.deepEqual(second.diagnostics, []);
    assert.deepEqual(stepsOf(second), ["update plain"]);
    const after = second.checkpoint.resources.find((s) => s.urn.endsWith("::plain"))!;
    assert.deepEqual(Object.keys(after.outputs), ["__provider"]);
    assert.equal(after.id, "plain-1");
  });
});
