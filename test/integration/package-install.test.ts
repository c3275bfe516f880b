// The npm package as another project gets it: `npm pack`, the tarball installed into an empty
// project (from npm's cache: --prefer-offline), then every export the README documents ("Using the
// components from another Pulumi program") used from there, types included, and the `mailstack`
// bin run on that project's own stack file. `npm test` builds dist/ before the tests run.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const REPO = path.resolve(__dirname, "../..");
const NODE = process.execPath;
const TSC = path.join(REPO, "node_modules", "typescript", "bin", "tsc");

/** The classes and functions the README names for use from another Pulumi program. */
const DOCUMENTED: string[] = [
  "MailStack",
  "MailHost",
  "MailDomain",
  "MailDaemon",
  "AcmeAccount",
  "AcmeCertificate",
  "validateStackConfig",
  "ConfigError",
  "planDomainRecords",
  "planHostRecords",
  "planPtr",
];
/** The subpaths the serialised dynamic providers load by package name (package.json "exports"). */
const PROVIDERS = ["acme-account", "acme-certificate", "ssh-reachable"];

/** A CommonJS program of the consumer's: the README's example, and each planner, under Pulumi's mocks. */
const CONSUMER_SCRIPT = `
const pulumi = require("@pulumi/pulumi");
const { argon2Sync, randomBytes, generateKeyPairSync } = require("node:crypto");
let next = 1000;
// What the providers would return: key material for tls.PrivateKey, addresses for the primary IPs.
function keyPair(algorithm) {
  const { privateKey, publicKey } = algorithm === "RSA" ? generateKeyPairSync("rsa", { modulusLength: 2048 }) : generateKeyPairSync("ed25519");
  const pkcs8 = privateKey.export({ format: "pem", type: "pkcs8" }).toString();
  const sshString = (b) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  const raw = publicKey.export({ format: "der", type: "spki" }).subarray(-32);
  return {
    privateKeyPem: pkcs8,
    privateKeyPemPkcs8: pkcs8,
    privateKeyOpenssh: pkcs8,
    publicKeyPem: publicKey.export({ format: "pem", type: "spki" }).toString(),
    publicKeyOpenssh: "ssh-ed25519 " + Buffer.concat([sshString(Buffer.from("ssh-ed25519")), sshString(raw)]).toString("base64"),
  };
}
function state(a) {
  if (a.type === "tls:index/privateKey:PrivateKey") return { ...a.inputs, ...keyPair(a.inputs.algorithm) };
  if (a.type === "hcloud:index/primaryIp:PrimaryIp") return { ...a.inputs, ipAddress: a.inputs.type === "ipv6" ? "2001:db8:1::" : "198.51.100.25" };
  return a.inputs;
}
pulumi.runtime.setMocks({ newResource: (a) => ({ id: String(next++), state: state(a) }), call: () => ({}) }, "consumer", "test", false);
const lib = require("mailstack");
const missing = ${JSON.stringify(DOCUMENTED)}.filter((n) => typeof lib[n] !== "function");
const providers = ${JSON.stringify(PROVIDERS)}.filter((p) => {
  const m = require("mailstack/providers/" + p);
  return Object.values(m).some((v) => typeof v === "function");
});
const b64 = (b) => b.toString("base64").replace(/=+$/, "");
const salt = randomBytes(16);
const tag = argon2Sync("argon2id", { message: "pw", nonce: salt, parallelism: 1, tagLength: 32, memory: 19456, passes: 2 });
const aliceHash = "$argon2id$v=19$m=19456,t=2,p=1$" + b64(salt) + "$" + b64(tag);
const config = {
  hostname: "mail.example.org",
  domains: [{ name: "example.org" }],
  users: [{ address: "alice@example.org", passwordHash: aliceHash }],
  acme: { email: "hostmaster@example.org" },
};
const spec = lib.validateStackConfig(config);
const mail = new lib.MailStack("mail", { spec, zoneIds: { "example.org": "zone-id" } });
let refused = "";
try {
  lib.validateStackConfig({ ...config, domains: [{ name: "example.org", dmarc: { policy: "rejct" } }] });
} catch (e) {
  refused = (e instanceof lib.ConfigError ? "ConfigError: " : "") + e.message;
}
const facts = { hostname: "mail.example.org", ipv4: "198.51.100.25", ipv6: "2001:db8:1::1" };
const hostTypes = [...new Set(lib.planHostRecords(facts).map((r) => r.type))].sort();
const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ format: "der", type: "spki" }).toString("base64");
const ed = generateKeyPairSync("ed25519").publicKey.export({ format: "der", type: "spki" }).subarray(-32).toString("base64");
const dkim = spec.domains[0].dkim.generations.flatMap((g) => [
  { selector: g + "-rsa", algorithm: "rsa", publicKeyB64: rsa },
  { selector: g + "-ed25519", algorithm: "ed25519", publicKeyB64: ed },
]);
const domainTypes = [...new Set(lib.planDomainRecords(spec.domains[0], facts, dkim, spec.acme).map((r) => r.type))].sort();
mail.records.apply((byZone) => {
  const types = [...new Set(Object.values(byZone).flat().map((r) => r.type))].sort();
  console.log(JSON.stringify({ missing, providers, zones: Object.keys(byZone), types, refused, ptr: lib.planPtr(facts), hostTypes, domainTypes }));
});
`;

function run(cmd: string, args: string[], cwd: string): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, {
    cwd,
    encoding: "utf8",
    timeout: 300_000,
    env: { ...process.env, npm_config_fund: "false", npm_config_audit: "false" },
  });
  assert.equal(r.status, 0, `${path.basename(cmd)} ${args.join(" ")} in ${cwd} exited ${r.status ?? r.signal}:\n${r.stdout}\n${r.stderr}`);
  return r;
}

let work = "";
let consumer = "";
let tarball = "";

before(() => {
  assert.ok(
    fs.existsSync(path.join(REPO, "dist", "components", "index.js")),
    "dist/ is missing: run `npm run build` first (npm test does)",
  );
  work = fs.mkdtempSync(path.join(os.tmpdir(), "mailstack-pack-"));
  // --ignore-scripts: dist/ is already built; `prepare` would compile it again
  const packed = run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", work], REPO);
  tarball = path.join(work, (JSON.parse(packed.stdout) as { filename: string }[])[0].filename);
  consumer = path.join(work, "consumer");
  fs.mkdirSync(consumer);
  fs.writeFileSync(path.join(consumer, "package.json"), JSON.stringify({ name: "consumer", version: "1.0.0", private: true }));
  run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", tarball], consumer);
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

describe("the packed mailstack, installed into an empty project", () => {
  test("the tarball holds the built library, the bin, the box's sources and the README, and no tests", () => {
    const listed = run("npm", ["pack", "--ignore-scripts", "--dry-run", "--json"], REPO);
    const files = (JSON.parse(listed.stdout) as { files: { path: string }[] }[])[0].files.map((f) => f.path);
    for (const f of [
      "dist/components/index.js",
      "dist/components/index.d.ts",
      "dist/infra/cli/main.js",
      "server-bootstrap/maild/main.ts",
      "README.md",
      "package.json",
    ]) {
      assert.ok(files.includes(f), `${f} is not in the package`);
    }
    assert.deepEqual(
      files.filter((f) => f.startsWith("test/") || f.startsWith("dist/test/")),
      [],
    );
  });

  test("every documented export and provider subpath is there, and the README's example builds a MailStack under Pulumi's mocks", () => {
    const script = path.join(consumer, "use.js");
    fs.writeFileSync(script, CONSUMER_SCRIPT);
    const r = run(NODE, [script], consumer);
    const out = JSON.parse(r.stdout.trim().split("\n").pop()!) as {
      missing: string[];
      providers: string[];
      zones: string[];
      types: string[];
      refused: string;
      ptr: { address: string; ptr: string }[];
      hostTypes: string[];
      domainTypes: string[];
    };
    assert.deepEqual(out.missing, []);
    assert.deepEqual(out.providers, PROVIDERS);
    assert.deepEqual(out.zones, ["example.org"]);
    for (const t of ["A", "AAAA", "MX", "TXT", "CAA", "SRV"])
      assert.ok(out.types.includes(t), `no ${t} record among ${out.types.join(", ")}`);
    assert.match(out.refused, /^ConfigError: .*\ndomains\[0\]\.dmarc\.policy: "rejct" is not one of none\|quarantine\|reject$/s);
    assert.deepEqual(out.ptr, [
      { address: "198.51.100.25", ptr: "mail.example.org" },
      { address: "2001:db8:1::1", ptr: "mail.example.org" },
    ]);
    assert.deepEqual(out.hostTypes, ["A", "AAAA", "TXT"]);
    assert.ok(out.domainTypes.includes("MX"), out.domainTypes.join(", "));
  });

  test("its type declarations resolve in the consumer: the README's example type-checks, a wrong argument does not", () => {
    fs.writeFileSync(
      path.join(consumer, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          module: "node16",
          moduleResolution: "node16",
          target: "es2022",
          skipLibCheck: false,
          types: [],
        },
      }),
    );
    fs.writeFileSync(
      path.join(consumer, "good.ts"),
      `import { MailStack, MailHost, MailDomain, MailDaemon, AcmeAccount, AcmeCertificate, validateStackConfig, ConfigError, planDomainRecords, planHostRecords, planPtr, type StackSpec } from "mailstack";
declare const aliceHash: string;
const spec: StackSpec = validateStackConfig({
  hostname: "mail.example.org",
  domains: [{ name: "example.org" }],
  users: [{ address: "alice@example.org", passwordHash: aliceHash }],
  acme: { email: "hostmaster@example.org" },
});
const mail = new MailStack("mail", { spec, zoneIds: { "example.org": "zone-id" } });
export const ipv4 = mail.ipv4;
export const records = mail.records;
export const used = [MailHost, MailDomain, MailDaemon, AcmeAccount, AcmeCertificate, ConfigError, planDomainRecords, planHostRecords, planPtr];
`,
    );
    run(NODE, [TSC, "-p", "tsconfig.json"], consumer);
    fs.writeFileSync(path.join(consumer, "bad.ts"), `import { MailStack } from "mailstack";\nnew MailStack("mail", { zoneIds: {} });\n`);
    const bad = spawnSync(NODE, [TSC, "--noEmit", "--strict", "--module", "node16", "--moduleResolution", "node16", "bad.ts"], {
      cwd: consumer,
      encoding: "utf8",
    });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stdout, /^bad\.ts\(2,\d+\): error TS2345[^]*Property 'spec' is missing in type/);
  });

  test("the mailstack bin plans the consumer's own stack file offline", () => {
    fs.writeFileSync(
      path.join(consumer, "Pulumi.yaml"),
      "name: mailstack\nruntime: nodejs\nmain: node_modules/mailstack/dist/infra/index.js\nstackConfigDir: stacks\n",
    );
    fs.mkdirSync(path.join(consumer, "stacks"), { recursive: true });
    fs.copyFileSync(path.join(REPO, "stacks", "Pulumi.prod.yaml"), path.join(consumer, "stacks", "Pulumi.prod.yaml"));
    const bin = path.join(consumer, "node_modules", ".bin", "mailstack");
    const r = run(NODE, [bin, "plan", "--stack", "prod", "--format", "json"], consumer);
    const plan = JSON.parse(r.stdout) as { hostname: string; records: unknown[] };
    assert.equal(plan.hostname, "mail.example.com");
  });
});
