// MailDaemon inside the real program under mocks: the command graph and its dependencies, the
// triggers (only the machine) against what @pulumi/command's SDK registers (replaceOnChanges
// `triggers[*]`), the pinned host key, secrets, the server's delete-before-replace, and that no
// provider token reaches anything sent to the box. What the engine then does with them (updates in
// place, the delete-before-replace cascade of a server replacement, on which machine each command
// runs) is test/component/program-steps.test.ts.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { runOffline, Secret, type RecordedResource, type OfflineRun } from "../../infra/offline/engine";
import { configFromStackValues } from "../../infra/cli/plan";
import { readStackFile } from "../../components/config/stack-file";
import { boxLayout } from "../../server-bootstrap/install/layout";
import { installScript } from "../../server-bootstrap/install/install-script";
import { installCommand, releaseVolumeCommand, sha256Hex, stopCommand, waitCommand } from "../../server-bootstrap/install/deploy-commands";
import { parseManifest } from "../../server-bootstrap/install/file-manifest";
import { controllerPasswordHash } from "../../components/rspamd-password";

const root = path.resolve(__dirname, "..", "..");
const devValues = readStackFile(path.join(root, "stacks", "Pulumi.dev.yaml"));
const HCLOUD_TOKEN = "hcloud-token-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd";
const CLOUDFLARE_TOKEN = "cf-token-ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210";

interface Observed {
  run: OfflineRun;
  /** resource name -> names of its explicit dependsOn */
  dependsOn: Map<string, string[]>;
  /** resource name -> its customTimeouts option */
  timeouts: Map<string, pulumi.CustomTimeouts | undefined>;
  /** whether MailDaemon's rspamdControllerPassword output is a secret */
  controllerPasswordSecret: boolean;
}

async function runDev(values: Record<string, unknown> = devValues): Promise<Observed> {
  const { config, secretKeys } = configFromStackValues(values);
  const withTokens = { ...config, "hcloud:token": HCLOUD_TOKEN, "cloudflare:apiToken": CLOUDFLARE_TOKEN };
  const pending: Promise<[string, string[]]>[] = [];
  const timeouts = new Map<string, pulumi.CustomTimeouts | undefined>();
  let controllerPasswordSecret: Promise<boolean> | undefined;
  const run = await runOffline(
    () => {
      // The in-process (legacy) transformation: the mock monitor has no transform callbacks.
      pulumi.runtime.registerStackTransformation((args) => {
        timeouts.set(args.name, (args.opts as pulumi.CustomResourceOptions).customTimeouts);
        const deps = args.opts.dependsOn;
        const list = (Array.isArray(deps) ? deps : deps ? [deps] : []) as pulumi.Resource[];
        pending.push(
          Promise.all(list.map((r) => new Promise<string>((resolve) => r.urn.apply((u) => resolve(u.split("::").pop()!))))).then(
            (names) => [args.name, names],
          ),
        );
        return undefined;
      });
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { defineMailStack } = require("../../infra/program") as typeof import("../../infra/program");
      const { stack, ...outputs } = defineMailStack();
      controllerPasswordSecret = pulumi.isSecret(stack.daemon.rspamdControllerPassword);
      return outputs;
    },
    {
      stack: "dev",
      config: withTokens,
      secretKeys: [...secretKeys, "hcloud:token", "cloudflare:apiToken"],
      ipv4: "198.51.100.25",
      ipv6Network: "2001:db8:1::",
    },
  );
  return { run, dependsOn: new Map(await Promise.all(pending)), timeouts, controllerPasswordSecret: await controllerPasswordSecret! };
}

const one = (run: OfflineRun, type: string, name: string): RecordedResource => {
  const found = run.resources.find((r) => r.type === type && r.name === name);
  assert.ok(found, `no ${type} named ${name}; have: ${run.resources.map((r) => `${r.type} ${r.name}`).join(", ")}`);
  return found;
};
const reveal = (v: unknown): unknown => (v instanceof Secret ? reveal(v.value) : v);

/** Every string anywhere in a value, secrets opened. */
function strings(value: unknown): string[] {
  const v = reveal(value);
  if (typeof v === "string") return [v];
  if (Array.isArray(v)) return v.flatMap(strings);
  if (v && typeof v === "object") return Object.values(v).flatMap(strings);
  return [];
}

describe("MailDaemon in the program (mocks)", async () => {
  const { run, dependsOn, timeouts, controllerPasswordSecret } = await runDev();
  const CMD = "command:remote:Command";
  const COPY = "command:remote:CopyToRemote";
  const reachable = one(run, "pulumi-nodejs:dynamic/mailstack:SshReachable", "mail-ssh-reachable");
  const wait = one(run, CMD, "mail-wait-for-ssh");
  const install = one(run, CMD, "mail-install");
  const release = one(run, CMD, "mail-release-volume");
  const copies = ["mail-daemon", "mail-installer"].map((n) => one(run, COPY, n));
  const layout = boxLayout();
  const stageDir = "/root/.mailstack-deploy";

  test("the steps and their order: ssh-reachable, wait-for-ssh, then the two copies, then install, then the volume guard", () => {
    assert.deepEqual(dependsOn.get("mail-ssh-reachable"), ["mail-data-attachment"]);
    assert.deepEqual(dependsOn.get("mail-wait-for-ssh"), ["mail-ssh-reachable"]);
    for (const c of copies) assert.deepEqual(dependsOn.get(c.name), ["mail-wait-for-ssh"], c.name);
    assert.deepEqual(dependsOn.get("mail-install"), ["mail-daemon", "mail-installer"]);
    assert.deepEqual(dependsOn.get("mail-release-volume"), ["mail-install"]);
    const daemon = one(run, "mailstack:index:MailDaemon", "mail");
    for (const r of [reachable, wait, install, release, ...copies]) assert.equal(r.parent, daemon.urn, r.name);
  });

  test("every step pins the host key MailHost generated and logs in as root with the deployer key", () => {
    for (const r of [wait, install, release, ...copies]) {
      const c = reveal(r.inputs.connection) as Record<string, unknown>;
      assert.match(String(reveal(c.hostKey)), /^ssh-ed25519 [A-Za-z0-9+/]+=*$/, r.name);
      assert.equal(reveal(c.host), "198.51.100.25", r.name);
      assert.equal(c.user, "root", r.name);
      assert.equal(c.port, 22, r.name);
      assert.ok(c.privateKey instanceof Secret || r.inputs.connection instanceof Secret, `${r.name}: the private key is secret`);
    }
  });

  test("ssh-reachable waits in the engine's provider process, pinned to the same host key, as root, for 600 s: no program, no path", () => {
    const remoteConnection = reveal(wait.inputs.connection) as Record<string, unknown>;
    const { __provider: provider, privateKey: _key, ...settings } = reachable.inputs;
    assert.deepEqual(settings, {
      host: "198.51.100.25",
      port: 22,
      user: "root",
      hostKey: reveal(remoteConnection.hostKey),
      timeoutSeconds: 600,
      instance: serverIdOf(run),
    });
    assert.match(String(settings.hostKey), /^ssh-ed25519 [A-Za-z0-9+/]+=*$/);
    // The serialised provider loads its logic by package name (components/package-provider.ts).
    assert.match(String(provider), /"mailstack\/providers\/ssh-reachable"/);
    assert.doesNotMatch(String(provider), new RegExp(`${root.replace(/[/.]/g, "\\$&")}|\\btsx\\b|ts-node|execPath`));
    assert.equal(timeouts.get("mail-ssh-reachable"), undefined);
  });

  test("ssh-reachable gets the deployer key as a secret, and keeps it out of its outputs", () => {
    assert.ok(reachable.inputs.privateKey instanceof Secret);
    const key = String(reveal(reachable.inputs.privateKey));
    assert.match(key, /^-----BEGIN [A-Z ]*PRIVATE KEY-----\n/);
    assert.equal(key, reveal((reveal(wait.inputs.connection) as Record<string, unknown>).privateKey));
    assert.ok(reachable.options.additionalSecretOutputs.includes("privateKey"));
  });

  test("wait-for-ssh (cloud-init, machine id) and later steps fail after 3 dials; wait-for-ssh is bounded by 10 minutes", () => {
    assert.equal(wait.inputs.create, waitCommand({ stageDir }));
    assert.deepEqual(timeouts.get("mail-wait-for-ssh"), { create: "10m" });
    for (const r of [wait, install, ...copies])
      assert.equal((reveal(r.inputs.connection) as Record<string, unknown>).dialErrorLimit, 3, r.name);
  });

  const manifestOf = (r: OfflineRun) => String(reveal(one(r, CMD, "mail-install").inputs.stdin));
  const machineOf = (r: OfflineRun) => String(reveal((one(r, CMD, "mail-install").inputs.triggers as unknown[])[0]));

  test("install runs the install script, naming the digests of what it installs, as create and update; its delete stops maild on this machine only", () => {
    const bundle = fs.readFileSync(path.resolve(String(reveal((copies[0].inputs.source as Record<string, unknown>).path))));
    const digests = { installer: sha256Hex(installScript(layout)), daemon: sha256Hex(bundle), files: sha256Hex(manifestOf(run)) };
    const cmd = installCommand({ stageDir, dataDevice: `/dev/disk/by-id/scsi-0HC_Volume_${volumeIdOf(run)}` }, digests);
    assert.equal(install.inputs.create, cmd);
    assert.equal(install.inputs.update, cmd);
    assert.equal(install.inputs.delete, stopCommand({ stageDir }, machineOf(run)));
    assert.equal(release.inputs.delete, releaseVolumeCommand({ stageDir }, machineOf(run)));
    assert.equal(install.inputs.addPreviousOutputInEnv, false);
  });

  test("every step's triggers carry only the machine (server id, machine id); the SDK makes a triggers change a replacement", () => {
    for (const r of [wait, install, release, ...copies]) assert.deepEqual(r.options.replaceOnChanges, ["triggers[*]"], r.name);
    assert.deepEqual((install.inputs.triggers as unknown[]).map(reveal), [machineOf(run)]);
    for (const c of copies) assert.deepEqual((c.inputs.triggers as unknown[]).map(reveal), [machineOf(run)], c.name);
  });

  test("the install step's own replacement (one machine, only ever an upgrade) is delete-first: its stop runs before the new install starts maild", () => {
    assert.equal(install.options.deleteBeforeReplace, true);
  });

  test("the file manifest is the install step's secret stdin and carries the config, unit, Dovecot files, TLS and DKIM keys", () => {
    assert.ok(install.inputs.stdin instanceof Secret);
    const files = parseManifest(manifestOf(run));
    const paths = files.map((f) => f.path);
    for (const p of [layout.configJson, layout.unitFile, layout.dovecotConf, layout.dovecotPasswd, layout.tlsCert, layout.tlsKey]) {
      assert.ok(paths.includes(p), p);
    }
    assert.equal(paths.filter((p) => p.startsWith(layout.dkimDir)).length, 4, "2 domains x (rsa + ed25519)");
    const config = JSON.parse(files.find((f) => f.path === layout.configJson)!.content);
    assert.equal(config.hostname, "mail.example.org");
    assert.equal(config.dataDir, "/var/lib/maild");
  });

  test("with an ACME certificate, the box gets the same account key (0600, owned by maild) and an acme section to renew on its own", () => {
    const files = parseManifest(manifestOf(run));
    const certificate = one(run, "pulumi-nodejs:dynamic/mailstack:AcmeCertificate", "mail-certificate");
    const account = one(run, "pulumi-nodejs:dynamic/mailstack:AcmeAccount", "mail-acme-account");
    const accountKey = files.find((f) => f.path === layout.acmeAccountKey);
    assert.ok(accountKey, `no ${layout.acmeAccountKey} in the manifest`);
    assert.equal(accountKey.content.trim(), String(reveal(certificate.inputs.accountKeyPem)).trim());
    assert.equal(accountKey.content.trim(), String(reveal(account.inputs.accountKeyPem)).trim());
    assert.deepEqual({ mode: accountKey.mode, owner: accountKey.owner }, { mode: "0600", owner: `${layout.uid}:${layout.gid}` });
    const config = JSON.parse(files.find((f) => f.path === layout.configJson)!.content);
    assert.deepEqual(config.acme, {
      directoryUrl: reveal(certificate.inputs.directoryUrl),
      accountKeyPath: layout.acmeAccountKey,
      email: (devValues.acme as { email: string }).email,
      names: reveal(certificate.inputs.names),
    });
    assert.deepEqual(config.tls, { certPath: layout.tlsCert, keyPath: layout.tlsKey });
  });

  test("rspamd's controller password is a secret output; the box gets only its hash, readable by rspamd's account alone", () => {
    assert.equal(controllerPasswordSecret, true, "rspamdControllerPassword is a secret output");
    const password = String(reveal(run.outputs.rspamdControllerPassword));
    assert.match(password, /^[A-Za-z0-9_-]{43}$/, "256 bits, base64url");
    const files = parseManifest(manifestOf(run));
    assert.deepEqual(
      files.filter((f) => f.content.includes(password)).map((f) => f.path),
      [],
    );
    const controller = files.find((f) => f.path === `${layout.rspamdConfDir}/local.d/worker-controller.inc`);
    assert.ok(controller, "no rspamd controller file in the manifest");
    assert.deepEqual(
      { mode: controller.mode, owner: controller.owner, effect: controller.effect },
      { mode: "0640", owner: "root:_rspamd", effect: "rspamd-restart" },
    );
    const hash = controllerPasswordHash(password);
    assert.ok(controller.content.includes(`password = "${hash}";\n`), controller.content);
    assert.ok(controller.content.includes(`enable_password = "${hash}";\n`), controller.content);
  });

  test("the server is replaced delete-first, and the daemon is re-installed when it is (instance trigger)", () => {
    assert.equal(one(run, "hcloud:index/server:Server", "mail-server").options.deleteBeforeReplace, true);
    const serverId = serverIdOf(run);
    const hostKey = reveal((reveal(wait.inputs.connection) as Record<string, unknown>).hostKey);
    assert.deepEqual([reachable.inputs.instance, reachable.inputs.hostKey], [serverId, hostKey]);
    assert.deepEqual((wait.inputs.triggers as unknown[]).map(reveal), [serverId]);
    assert.deepEqual((release.inputs.triggers as unknown[]).map(reveal), [serverId]);
  });

  test("no Hetzner or Cloudflare token reaches the box: no remote command or copy carries one, nor the user data", () => {
    const commands = run.resources.filter((x) => x.type.startsWith("command:"));
    assert.equal(commands.length, 5);
    const carriers = commands.filter((r) => strings(r.inputs).some((s) => s.includes(HCLOUD_TOKEN) || s.includes(CLOUDFLARE_TOKEN)));
    assert.deepEqual(
      carriers.map((r) => r.name),
      [],
    );
    const userData = String(reveal(one(run, "hcloud:index/server:Server", "mail-server").inputs.userData));
    assert.ok(!userData.includes(HCLOUD_TOKEN) && !userData.includes(CLOUDFLARE_TOKEN));
  });
});

/** Mock ids are derived from type/name (infra/offline/mock-provider.ts); read them back from the recorded inputs. */
function volumeIdOf(run: OfflineRun): string {
  const attachment = run.resources.find((r) => r.type === "hcloud:index/volumeAttachment:VolumeAttachment")!;
  return String(reveal(attachment.inputs.volumeId));
}

function serverIdOf(run: OfflineRun): string {
  const attachment = run.resources.find((r) => r.type === "hcloud:index/volumeAttachment:VolumeAttachment")!;
  return String(reveal(attachment.inputs.serverId));
}
