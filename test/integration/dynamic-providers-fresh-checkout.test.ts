// Issue 13 item 5: state written by one checkout is destroyed and updated from another. The
// program runs here (its serialised providers, `__provider`, are what the engine stores) and the
// resources are created here against pebble, knot and sshd; then a fresh copy of the committed
// tree (git archive HEAD) in another directory, with node_modules and a build, runs the offline
// engine's Node dynamic provider host (infra/offline/providers/dynamic-host.ts, from the copy's
// build, in its own process with the copy as working directory: test/harness/dynamic-provider-host.ts)
// on that old state as on another machine: this checkout is hidden from the host (an empty tmpfs
// over it). Check, diff, update and delete work, the providers load from the copy's own build, and
// nothing needs a TypeScript loader.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LocalInternet, runCommand } from "../../infra/local-internet/netns";
import { httpsGetText, startAcmeTestbed, type AcmeTestbed } from "../../infra/local-internet/pebble";
import { startSshd, type SshServer } from "../../infra/local-internet/sshd";
import { runOffline } from "../../infra/offline/engine";
import { configFromStackValues } from "../../infra/cli/plan";
import { readStackFile } from "../../components/config/stack-file";
import { provider as accountProvider, type AccountOutputs } from "../../components/providers/acme-account";
import { provider as certificateProvider, type CertificateOutputs } from "../../components/providers/acme-certificate";
import { provider as sshProvider, type SshReachableOutputs } from "../../components/providers/ssh-reachable";
import { certificateRequestPem } from "../../components/shared/acme/certificate-request";
import { acmeAccountInputs, acmeCertificateInputs } from "../harness/acme-provider-inputs";
import { runInProviderHost, type HostCall, type HostResult } from "../harness/dynamic-provider-host";

if (process.getuid?.() !== 0) throw new Error("this test needs root (network namespaces, a private mount namespace for the provider host)");

const REPO = path.resolve(__dirname, "../..");
const NAMES = ["mail.example.test", "mta-sts.example.test"];
const ecKeyPem = () => generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "sec1", format: "pem" }).toString();

/** The serialised providers of the program's dynamic resources, as the engine stores them, by type. */
async function serialisedProviders(): Promise<Record<string, string>> {
  const { config, secretKeys } = configFromStackValues(readStackFile(path.join(REPO, "stacks", "Pulumi.dev.yaml")));
  const run = await runOffline(
    () => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { defineMailStack } = require("../../infra/program") as typeof import("../../infra/program");
      const { stack: _stack, ...outputs } = defineMailStack();
      return outputs;
    },
    { stack: "dev", config, secretKeys },
  );
  return Object.fromEntries(
    run.resources
      .filter((r) => r.type.startsWith("pulumi-nodejs:dynamic/mailstack:"))
      .map((r) => [r.type.split(":").pop()!, String(r.inputs.__provider)]),
  );
}

/**
 * A fresh copy of the committed tree with its own build. Its node_modules is an empty directory:
 * the host gets this checkout's node_modules bind-mounted there (HostOptions.isolateFrom).
 */
async function freshCopy(): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstack-copy-"));
  const archive = await runCommand(["bash", "-c", `git -C ${JSON.stringify(REPO)} archive HEAD | tar -x -C ${JSON.stringify(dir)}`]);
  assert.equal(archive.code, 0, archive.stderr);
  fs.symlinkSync(path.join(REPO, "node_modules"), path.join(dir, "node_modules"));
  const build = await runCommand([path.join(REPO, "node_modules", ".bin", "tsc"), "-p", "tsconfig.build.json"], {
    cwd: dir,
    timeoutMs: 300_000,
  });
  assert.equal(build.code, 0, `npm run build in the copy: ${build.stdout}${build.stderr}`);
  fs.unlinkSync(path.join(dir, "node_modules"));
  fs.mkdirSync(path.join(dir, "node_modules"));
  return dir;
}

const ACCOUNT = "pulumi-nodejs:dynamic/mailstack:AcmeAccount";
const CERTIFICATE = "pulumi-nodejs:dynamic/mailstack:AcmeCertificate";
const SSH = "pulumi-nodejs:dynamic/mailstack:SshReachable";

/** The host of the copy's build, in `project`, with this checkout hidden (another machine). */
const host = (project: string, calls: HostCall[]) => runInProviderHost(project, calls, { hostDir: copy, isolateFrom: REPO });
let copy: string;

function ok(r: HostResult): unknown {
  assert.equal(r.ok, true, r.ok ? "" : r.error);
  return (r as { result: unknown }).result;
}

describe("state from this checkout, destroyed and updated from a fresh copy in another directory", () => {
  let net: LocalInternet;
  let bed: AcmeTestbed;
  let sshd: SshServer;
  let providers: Record<string, string>;
  const accountKeyPem = ecKeyPem();
  const certificateKeyPem = ecKeyPem();
  let accountInputs: Record<string, unknown>;
  let certificateInputs: Record<string, unknown>;
  let sshInputs: Record<string, unknown>;
  let account: { id: string; outs: AccountOutputs };
  let certificate: { id: string; outs: CertificateOutputs };
  let reachable: { id: string; outs: SshReachableOutputs };
  const status = async (serialHex: string) =>
    (
      JSON.parse(
        await httpsGetText(`https://${bed.ca.ipv4}:15000/cert-status-by-serial/${serialHex.toLowerCase()}`, bed.pebble.listenerCaPem),
      ) as { Status: string }
    ).Status;
  /** old outputs as the engine keeps them: the provider's outs plus the serialised provider */
  const state = (type: string, outs: object) => ({ ...outs, __provider: providers[type] });

  before(async () => {
    copy = await freshCopy();
    providers = await serialisedProviders();
    net = await LocalInternet.create();
    bed = await startAcmeTestbed(net, [{ origin: "example.test.", lines: [] }]);
    const box = await net.addHost("box");
    sshd = await startSshd(net, box);
    accountInputs = acmeAccountInputs(bed, accountKeyPem);
    account = (await accountProvider.create(accountInputs)) as typeof account;
    certificateInputs = await acmeCertificateInputs(bed, { accountUrl: account.outs.accountUrl, accountKeyPem }, certificateKeyPem, NAMES);
    certificate = (await certificateProvider.create(certificateInputs)) as typeof certificate;
    sshInputs = {
      host: box.ipv4,
      port: sshd.port,
      user: "root",
      hostKey: sshd.hostKey,
      privateKey: sshd.client.privateKey,
      timeoutSeconds: 60,
      instance: "4711",
    };
    reachable = (await sshProvider.create(sshInputs)) as typeof reachable;
  });
  after(async () => {
    await sshd?.stop();
    await net?.destroy();
    if (copy) fs.rmSync(copy, { recursive: true, force: true });
  });

  test("the state's providers were serialised here, and in the copy they load the copy's own build", async () => {
    assert.deepEqual(Object.keys(providers).sort(), ["AcmeAccount", "AcmeCertificate", "SshReachable"]);
    for (const text of Object.values(providers)) assert.equal(text.includes(REPO), false);
    const [where, checkout, modules] = await host(copy, [
      { method: "resolve", specifier: "mailstack/providers/acme-certificate" },
      { method: "exists", path: path.join(REPO, "package.json") },
      { method: "exists", path: path.join(copy, "node_modules", "acme-client", "package.json") },
    ]);
    assert.equal(ok(where), path.join(fs.realpathSync(copy), "dist", "components", "providers", "acme-certificate.js"));
    assert.equal(ok(checkout), false, "the checkout that wrote the state is out of the host's sight");
    assert.equal(ok(modules), true, "the copy has its node_modules");
  });

  test("AcmeAccount from the copy: check and diff of the unchanged account, then destroy", async () => {
    const news = { ...accountInputs, __provider: providers.AcmeAccount };
    const results = await host(copy, [
      { method: "check", type: ACCOUNT, name: "mail-acme-account", olds: news, news },
      { method: "diff", type: ACCOUNT, name: "mail-acme-account", id: account.id, oldOutputs: state("AcmeAccount", account.outs), news },
      { method: "delete", type: ACCOUNT, name: "mail-acme-account", id: account.id, oldOutputs: state("AcmeAccount", account.outs) },
    ]);
    assert.deepEqual((ok(results[0]) as { failures: unknown[] }).failures, []);
    assert.equal((ok(results[1]) as { changes: string }).changes, "none");
    ok(results[2]);
  });

  test("AcmeCertificate from the copy: diff says unchanged; an update re-issues for new names; destroy revokes the old state's certificate", async () => {
    const names = [...NAMES, "autoconfig.example.test"];
    const news = { ...certificateInputs, __provider: providers.AcmeCertificate };
    const renamed = { ...news, names, csrPem: await certificateRequestPem(certificateKeyPem, names) };
    const old = state("AcmeCertificate", certificate.outs);
    const name = "mail-certificate";
    const calls: HostCall[] = [
      { method: "diff", type: CERTIFICATE, name, id: certificate.id, oldOutputs: old, news },
      { method: "update", type: CERTIFICATE, name, id: certificate.id, oldOutputs: old, news: renamed },
      { method: "delete", type: CERTIFICATE, name, id: certificate.id, oldOutputs: old },
    ];
    const results = await host(copy, calls);
    assert.equal((ok(results[0]) as { changes: string }).changes, "none");
    const updated = (ok(results[1]) as { outputs: CertificateOutputs & { __provider: string } }).outputs;
    assert.equal(updated.__provider, providers.AcmeCertificate, "the state keeps the serialised provider");
    assert.deepEqual(updated.names, names);
    assert.notEqual(updated.serialHex, certificate.outs.serialHex);
    assert.equal(updated.spkiSha256, certificate.outs.spkiSha256);
    ok(results[2]);
    assert.equal(await status(certificate.outs.serialHex), "Revoked");
    assert.equal(await status(updated.serialHex), "Valid");
  });

  test("SshReachable from the copy: diff of the unchanged step; an update waits for SSH again; destroy", async () => {
    const news = { ...sshInputs, __provider: providers.SshReachable };
    const old = state("SshReachable", reachable.outs);
    const name = "mail-ssh-reachable";
    const results = await host(copy, [
      { method: "diff", type: SSH, name, id: reachable.id, oldOutputs: old, news },
      { method: "diff", type: SSH, name, id: reachable.id, oldOutputs: old, news: { ...news, instance: "4712" } },
      { method: "update", type: SSH, name, id: reachable.id, oldOutputs: old, news: { ...news, timeoutSeconds: 30 } },
      { method: "delete", type: SSH, name, id: reachable.id, oldOutputs: old },
    ]);
    assert.equal((ok(results[0]) as { changes: string }).changes, "none");
    const replaced = ok(results[1]) as { changes: string; replaceKeys: string[]; deleteBeforeReplace: boolean };
    assert.deepEqual([replaced.changes, replaced.replaceKeys, replaced.deleteBeforeReplace], ["some", ["instance"], false]);
    assert.match((ok(results[2]) as { outputs: SshReachableOutputs }).outputs.message, /presents the pinned ssh-ed25519 host key/);
    ok(results[3]);
  });

  test("a project without mailstack: the provider says what to install, naming the project directory", async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), "no-mailstack-"));
    try {
      fs.mkdirSync(path.join(empty, "node_modules"));
      const news = { ...accountInputs, __provider: providers.AcmeAccount };
      const [r] = await host(empty, [{ method: "check", type: ACCOUNT, name: "mail-acme-account", news }]);
      assert.equal(r.ok, false);
      assert.match(
        (r as { error: string }).error,
        new RegExp(
          `^mailstack/providers/acme-account cannot be loaded from the Pulumi project at ${fs.realpathSync(empty).replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: install mailstack there \\(npm install mailstack\\)`,
        ),
      );
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });
});
