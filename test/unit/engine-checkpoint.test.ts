// `pulumi stack export` JSON in and out of the offline engine (infra/offline/checkpoint.ts): field
// names of apitype.ResourceV3, plaintext and ciphertext secrets, and a state written after `up`
// that the next preview finds unchanged.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { formatStackExport, parseStackExport } from "../../infra/offline/checkpoint";
import { Secret, Unknown } from "../../infra/offline/model";
import { EncryptedSecret } from "../../infra/offline/property-values";
import { simulate } from "../../infra/offline/simulate";
import { FakeProvider, FakeResource } from "../harness/fake-stand-ins";

const SIG = "4dabf18193072939515e22adb298388d";
const SECRET = "1b47061264138c4ac30d75fd1eb44270";
const ASSET = "c44067f5952c0a294b673a41bacd8c17";

const exported = {
  version: 3,
  deployment: {
    manifest: { time: "2026-01-01T00:00:00Z", magic: "x", version: "v3.200.0" },
    secrets_providers: { type: "passphrase", state: { salt: "v1:abc" } },
    resources: [
      {
        urn: "urn:pulumi:dev::mailstack::pulumi:pulumi:Stack::mailstack-dev",
        custom: false,
        type: "pulumi:pulumi:Stack",
        outputs: { hostname: "mail.example.org" },
      },
      {
        urn: "urn:pulumi:dev::mailstack::pulumi:providers:hcloud::default_1_41_0",
        custom: true,
        id: "0b1e-uuid",
        type: "pulumi:providers:hcloud",
        inputs: { token: { [SIG]: SECRET, plaintext: '"hc-token"' }, version: "1.41.0" },
        outputs: { token: { [SIG]: SECRET, plaintext: '"hc-token"' }, version: "1.41.0" },
      },
      {
        urn: "urn:pulumi:dev::mailstack::hcloud:index/server:Server::mail-server",
        custom: true,
        id: "12345",
        type: "hcloud:index/server:Server",
        inputs: {
          image: "debian-12",
          userData: { [SIG]: SECRET, ciphertext: "v1:AAAA" },
          labels: { a: { [SIG]: SECRET, plaintext: '{"x":[1,2]}' } },
        },
        outputs: { image: "debian-12", status: "running" },
        parent: "urn:pulumi:dev::mailstack::pulumi:pulumi:Stack::mailstack-dev",
        protect: true,
        dependencies: ["urn:pulumi:dev::mailstack::tls:index/privateKey:PrivateKey::k"],
        provider: "urn:pulumi:dev::mailstack::pulumi:providers:hcloud::default_1_41_0::0b1e-uuid",
        propertyDependencies: { userData: ["urn:pulumi:dev::mailstack::tls:index/privateKey:PrivateKey::k"] },
        importID: "12345",
        retainOnDelete: true,
        created: "2026-01-01T00:00:00Z",
        customTimeouts: { create: 600 },
      },
      {
        urn: "urn:pulumi:dev::mailstack::command:remote:CopyToRemote::files",
        custom: true,
        id: "files-1",
        type: "command:remote:CopyToRemote",
        inputs: { source: { [SIG]: ASSET, hash: "ab", text: "hello" } },
        delete: true,
      },
    ],
  },
};

describe("reading a stack export", () => {
  test("maps ResourceV3 fields, opens plaintext secrets, keeps ciphertexts as encrypted secrets and assets as they are", () => {
    const parsed = parseStackExport(JSON.stringify(exported), "state.json");
    assert.equal(parsed.encryptedSecrets, true);
    assert.deepEqual(parsed.checkpoint.outputs, { hostname: "mail.example.org" });
    const server = parsed.checkpoint.resources[2];
    assert.equal(server.id, "12345");
    assert.equal(server.importId, "12345");
    assert.equal(server.protect, true);
    assert.equal(server.retainOnDelete, true);
    assert.deepEqual(server.propertyDependencies, { userData: ["urn:pulumi:dev::mailstack::tls:index/privateKey:PrivateKey::k"] });
    assert.ok(server.inputs.userData instanceof Secret);
    assert.ok((server.inputs.userData as Secret).value instanceof EncryptedSecret);
    assert.deepEqual((server.inputs.labels as Record<string, Secret>).a.value, { x: [1, 2] });
    assert.deepEqual(server.unmodeled, { created: "2026-01-01T00:00:00Z", customTimeouts: { create: 600 } });
    const files = parsed.checkpoint.resources[3];
    assert.equal(files.delete, true);
    assert.deepEqual(files.inputs.source, { [SIG]: ASSET, hash: "ab", text: "hello" });
  });

  test("writing it back gives the same resources: secrets as plaintext or the same ciphertext, unmodeled fields kept", () => {
    const parsed = parseStackExport(JSON.stringify(exported), "state.json");
    const written = JSON.parse(formatStackExport(parsed.checkpoint, parsed));
    assert.equal(written.version, 3);
    assert.deepEqual(written.deployment.secrets_providers, exported.deployment.secrets_providers);
    assert.deepEqual(written.deployment.resources, exported.deployment.resources);
  });

  test("bad input is refused naming the input and how to mend it", () => {
    const cases: [string, RegExp][] = [
      ["not json", /^state\.json: not JSON .*pulumi stack export --show-secrets/],
      [JSON.stringify({ version: 2, deployment: {} }), /^state\.json: deployment version 2 is not supported/],
      [JSON.stringify({ deployment: {} }), /^state\.json: not a `pulumi stack export` document/],
      [
        JSON.stringify({ version: 3, deployment: { resources: [], pending_operations: [{ type: "creating", resource: {} }] } }),
        /^state\.json: the stack has 1 pending operation\(s\)/,
      ],
      [
        JSON.stringify({ version: 3, deployment: { resources: [{ urn: 1 }] } }),
        /^state\.json: deployment\.resources\[0\]: expected an object with urn and type/,
      ],
    ];
    for (const [text, message] of cases) assert.throws(() => parseStackExport(text, "state.json"), { message });
  });
});

describe("a state written after up", () => {
  test("the next preview against it has nothing to do, secrets included", async () => {
    const fake = new FakeProvider("fake", { computed: { out: () => "generated" } });
    const program = () => {
      const a = new FakeResource("Thing", "a", { token: pulumi.secret("s3cret"), list: [1, { x: "y" }] });
      new FakeResource("Thing", "b", { from: a.out });
    };
    const base = { stack: "dev", project: "mailstack", providers: [fake], parallel: 1, program };
    const up = await simulate({ ...base, mode: "up" });
    const text = formatStackExport(up.checkpoint);
    assert.match(text, new RegExp(`"plaintext": "\\\\"s3cret\\\\""`));
    const preview = await simulate({ ...base, mode: "preview", checkpoint: parseStackExport(text, "state.json").checkpoint });
    assert.deepEqual(preview.diagnostics, []);
    assert.deepEqual([...new Set(preview.steps.map((s) => s.op))], ["same"]);
  });

  test("an encrypted secret in the state reaches the program as an unknown secret", async () => {
    const fake = new FakeProvider("fake");
    const program = () => {
      const a = new FakeResource("Thing", "a", { size: 1 });
      new FakeResource("Thing", "b", { from: a.value });
    };
    const base = { stack: "dev", project: "mailstack", providers: [fake], parallel: 1, program };
    const up = await simulate({ ...base, mode: "up" });
    const a = up.checkpoint.resources.find((r) => r.urn.endsWith("::a"))!;
    a.outputs.value = new Secret(new EncryptedSecret("v1:opaque"));
    const preview = await simulate({ ...base, mode: "preview", checkpoint: up.checkpoint });
    const b = preview.resources.find((r) => r.name === "b")!;
    assert.ok(b.inputs.from instanceof Secret);
    assert.equal((b.inputs.from as Secret).value, Unknown);
  });
});
