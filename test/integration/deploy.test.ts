// The deploy steps over real SSH: sshd in a network namespace stands in for the mail server (its
// Ed25519 host key generated as MailHost generates it), the steps are the exact command strings
// MailDaemon hands to @pulumi/command, run with ssh2 (host key pinned), and the install script
// installs into a fresh root directory with --no-systemctl, starting maild from the unit's ExecStart.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, generateKeyPairSync } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import nodemailer from "nodemailer";
import { LocalInternet, runCommand, type NetHost } from "../../infra/local-internet/netns";
import {
  connectPinned,
  copyToRemote,
  ed25519KeyPair,
  exec,
  HostKeyMismatch,
  startSshd,
  type SshServer,
  type SshTarget,
} from "../../infra/local-internet/sshd";
import { boxLayout, dkimKeyPath, MAILD_UID, type BoxLayout } from "../../server-bootstrap/install/layout";
import { deployFiles } from "../../server-bootstrap/install/deploy-files";
import { renderManifest } from "../../server-bootstrap/install/file-manifest";
import { installScript } from "../../server-bootstrap/install/install-script";
import { installCommand, LEGACY_STAGED_MANIFEST, stagedPath } from "../../server-bootstrap/install/deploy-commands";
import { bundleDaemon } from "../../server-bootstrap/install/daemon-bundle";
import { argon2idHash } from "../../components/shared/argon2id";
import { METADATA_ADDRESS } from "../../server-bootstrap/systemd/metadata-guard";
import { acceptsConnections } from "../../infra/local-internet/wait-for-port";
import { killFromPidFile } from "../harness/maild";
import { NEW_EC_KEY } from "../../infra/local-internet/test-tls";
import { deploy, freshRoot, installPayload, NODE, stopDeployment, type Deployment } from "../harness/box-deploy";
import { TEST_CONTROLLER_PASSWORD, TEST_DEPLOY_SPAM } from "../fixtures/deploy-spam";
import { deployedSpamFilterFiles, startDeployedSpamFilter } from "../../infra/local-internet/spam-filter";

const USER_DATA = "#cloud-config\nssh_keys: {ed25519_private: stand-in}\n";

/** A self-signed certificate; with `keyFile`, for that (stable) key, as a renewal would be. */
async function selfSignedCert(
  dir: string,
  name: string,
  days: number,
  keyFile?: string,
): Promise<{ certificatePem: string; privateKeyPem: string }> {
  const key = keyFile ?? path.join(dir, `${name}.key`);
  const cert = path.join(dir, `${name}-${days}.pem`);
  const keyArgs = keyFile ? ["-key", keyFile] : [...NEW_EC_KEY, "-keyout", key];
  const r = await runCommand([
    "openssl",
    "req",
    "-x509",
    ...keyArgs,
    "-out",
    cert,
    "-days",
    String(days),
    "-subj",
    `/CN=${name}`,
    "-addext",
    `subjectAltName=DNS:${name}`,
  ]);
  if (r.code !== 0) throw new Error(`openssl: ${r.stderr}`);
  return { certificatePem: fs.readFileSync(cert, "utf8"), privateKeyPem: fs.readFileSync(key, "utf8") };
}

function smtpBanner(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    let buf = "";
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no SMTP banner from ${host}:${port} in 10 s`));
    }, 10_000);
    s.on("data", (d) => {
      buf += d.toString();
      if (buf.includes("\r\n")) {
        clearTimeout(timer);
        s.end("QUIT\r\n");
        resolve(buf.split("\r\n")[0]);
      }
    });
    s.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

const pidOf = (layout: BoxLayout) => Number(fs.readFileSync(path.join(layout.runDir, "maild.pid"), "utf8"));

function installedFiles(d: Deployment): string[] {
  return [d.layout.daemonJs, ...deployFiles(d.layout, d.input).map((f) => f.path)];
}

function mtimes(files: string[]): Record<string, number> {
  return Object.fromEntries(files.map((f) => [f, fs.statSync(f).mtimeMs]));
}

function walk(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

describe("deploy over SSH into a fresh root (sshd in a namespace)", () => {
  let internet: LocalInternet;
  let box: NetHost;
  let sshd: SshServer;
  let target: SshTarget;
  let bundle: string;
  let work: string;
  let dataDir: string;
  let first: Deployment;
  const started: Deployment[] = [];

  before(async () => {
    if (process.getuid?.() !== 0) throw new Error("deploy tests need root (network namespaces, sshd, chown)");
    internet = await LocalInternet.create();
    box = await internet.addHost("box");
    sshd = await startSshd(internet, box);
    target = { host: box.ipv4, port: sshd.port, user: "root", privateKey: sshd.client.privateKey, hostKey: sshd.hostKey };
    // The box's metadata service, as Hetzner serves it to every local process.
    const added = await box.run(["ip", "addr", "add", `${METADATA_ADDRESS}/32`, "dev", "lo"]);
    assert.equal(added.code, 0, added.stderr);
    box.spawn([
      NODE,
      "-e",
      `require("node:http").createServer((q, r) => r.end(q.url === "/hetzner/v1/userdata" ? ${JSON.stringify(USER_DATA)} : "")).listen(80, "${METADATA_ADDRESS}")`,
    ]);
    work = fs.mkdtempSync(path.join(os.tmpdir(), "mailstack-deploy-"));
    fs.chmodSync(work, 0o755);
    bundle = bundleDaemon(path.join(work, "bundle", "maild.js"));
    dataDir = path.join(work, "data");
    const dkimRsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const dkimEd = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const root = freshRoot(work, "root1");
    const layout = boxLayout({ root, dataDir });
    first = {
      layout,
      stageDir: path.join(root, "root/.mailstack-deploy"),
      input: {
        hostname: "mail.example.test",
        domains: [
          {
            name: "example.test",
            dkim: [
              { selector: "s1-rsa", algorithm: "rsa", privateKeyPem: dkimRsa },
              { selector: "s1-ed25519", algorithm: "ed25519", privateKeyPem: dkimEd },
            ],
            mtaStsPolicy: "version: STSv1\r\nmode: enforce\r\nmx: mail.example.test\r\nmax_age: 86400\r\n",
          },
        ],
        users: [{ address: "alice@example.test", passwordHash: argon2idHash("alice secret") }],
        aliases: [{ address: "postmaster@example.test", to: ["alice@example.test"] }],
        tls: await selfSignedCert(work, "mail.example.test", 30),
        spam: TEST_DEPLOY_SPAM,
        maild: {
          listen: { smtp: [{ host: box.ipv4, port: 25 }], http: [{ host: box.ipv4, port: 80 }], https: [{ host: box.ipv4, port: 443 }] },
          // Nothing answers DNS on the box's loopback: lookups fail at once instead of timing out.
          dnsServers: ["127.0.0.1"],
          shutdownTimeoutMs: 2000,
        },
      },
    };
  });

  after(async () => {
    for (const d of started) {
      try {
        await stopDeployment(target, d);
      } catch {
        killFromPidFile(path.join(d.layout.runDir, "maild.pid"));
      }
    }
    await internet?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test("a first deploy installs everything and maild, started from the unit's ExecStart, answers on 25, 80 and 443", async () => {
    const { summary } = await deploy(target, first, bundle);
    started.push(first);
    assert.match(
      summary,
      /^mailstack-install: changed=\S+ actions=sieve:compile,metadata-guard:apply,maild:start,unbound:restart-skipped,redis-server:restart-skipped,rspamd:restart-skipped,dovecot:restart-skipped$/,
    );
    // Without systemd the spam filter is only reported; run it on the deployed files, as the box would.
    await startDeployedSpamFilter(internet, box, deployedSpamFilterFiles(first.layout), {
      settings: first.input.spam.settings,
      controllerPassword: TEST_CONTROLLER_PASSWORD,
      upstreamDns: "none",
    });
    for (const f of installedFiles(first)) assert.ok(fs.existsSync(f), `${f} was not installed`);
    assert.match(await smtpBanner(box.ipv4, 25), /^220 mail\.example\.test/);
    assert.equal(await acceptsConnections(box.ipv4, 80), true, "port 80");
    assert.equal(await acceptsConnections(box.ipv4, 443), true, "port 443");
    const cmdline = fs
      .readFileSync(`/proc/${pidOf(first.layout)}/cmdline`, "utf8")
      .split("\0")
      .filter(Boolean);
    const execStart = fs
      .readFileSync(first.layout.unitFile, "utf8")
      .match(/^ExecStart=(.*)$/m)![1]
      .split(" ");
    assert.deepEqual(cmdline, execStart);
  });

  test("maild runs as the maild account (uid 2525) with only CAP_NET_BIND_SERVICE", () => {
    const status = fs.readFileSync(`/proc/${pidOf(first.layout)}/status`, "utf8");
    assert.match(status, new RegExp(`^Uid:\\s+${MAILD_UID}\\s+${MAILD_UID}\\s+${MAILD_UID}\\s+${MAILD_UID}$`, "m"));
    const capEff = BigInt("0x" + status.match(/^CapEff:\s+([0-9a-f]+)$/m)![1]);
    assert.equal(capEff, 1n << 10n, "CapEff is exactly CAP_NET_BIND_SERVICE (bit 10)");
    assert.match(fs.readFileSync(path.join(first.layout.root, "etc/passwd"), "utf8"), /^maild:x:2525:2525:/m);
  });

  test("after a deploy only root reaches the metadata service (user data, SSH host key): maild's uid and any other is refused", async () => {
    const get = `fetch("http://${METADATA_ADDRESS}/hetzner/v1/userdata").then(async (r) => process.stdout.write(await r.text()), (e) => { process.stderr.write(String(e.cause?.code ?? e)); process.exit(1); })`;
    const asUid = (uid: number) => box.run(["setpriv", `--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", NODE, "-e", get]);
    const root = await box.run([NODE, "-e", get]);
    assert.deepEqual([root.code, root.stdout], [0, USER_DATA]);
    for (const uid of [MAILD_UID, 65534]) {
      const r = await asUid(uid);
      assert.deepEqual([r.code, r.stdout, r.stderr], [1, "", "ECONNREFUSED"], `uid ${uid}`);
    }
  });

  test("a second deploy of the same inputs changes nothing: no file rewritten, no restart", async () => {
    const files = installedFiles(first);
    const before = mtimes(files);
    const pid = pidOf(first.layout);
    const { summary } = await deploy(target, first, bundle);
    assert.equal(summary, "mailstack-install: changed=none actions=none");
    assert.deepEqual(mtimes(files), before);
    assert.equal(pidOf(first.layout), pid);
  });

  test("a changed user list rewrites the config and passwd-file and restarts maild, nothing else", async () => {
    const pid = pidOf(first.layout);
    first.input = {
      ...first.input,
      users: [...first.input.users, { address: "bob@example.test", passwordHash: argon2idHash("bob secret") }],
    };
    const { summary } = await deploy(target, first, bundle);
    assert.equal(summary, `mailstack-install: changed=${first.layout.configJson},${first.layout.dovecotPasswd} actions=maild:restart`);
    assert.notEqual(pidOf(first.layout), pid);
    assert.match(await smtpBanner(box.ipv4, 25), /^220 /);
  });

  test("an invalid configuration is refused before anything is touched", async () => {
    const before = mtimes(installedFiles(first));
    const bad = { ...first, input: { ...first.input, hostname: "not a hostname" } };
    const conn = await connectPinned(target);
    try {
      const { manifest, digests } = installPayload(bad, bundle);
      const r = await exec(conn, installCommand({ stageDir: bad.stageDir, noSystemctl: true }, digests), manifest);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /the new maild configuration is invalid, nothing was changed: hostname: "not a hostname"/);
    } finally {
      conn.end();
    }
    assert.deepEqual(mtimes(installedFiles(first)), before);
  });

  test("no key stays on the box: the stage directory is 0700 with only the daemon and the install script, and a manifest an earlier version staged is removed", async () => {
    const legacy = path.join(first.stageDir, LEGACY_STAGED_MANIFEST);
    fs.writeFileSync(legacy, renderManifest(deployFiles(first.layout, first.input)), { mode: 0o644 });
    // Other test files deploy at the same time through the same /tmp: only copies of this
    // deployment's manifest count.
    const ours = createHash("sha256")
      .update(renderManifest(deployFiles(first.layout, first.input)))
      .digest("hex");
    const manifestsInTmp = () =>
      fs
        .readdirSync(os.tmpdir())
        .map((e) => path.join(os.tmpdir(), e, ".manifest"))
        .filter((f) => fs.existsSync(f) && createHash("sha256").update(fs.readFileSync(f)).digest("hex") === ours);
    const before = manifestsInTmp();
    const { summary } = await deploy(target, first, bundle);
    assert.equal(summary, "mailstack-install: changed=none actions=none");
    assert.deepEqual(fs.readdirSync(first.stageDir).sort(), ["install.sh", "maild.js"]);
    assert.equal(fs.statSync(first.stageDir).mode & 0o777, 0o700);
    assert.deepEqual(manifestsInTmp(), before, "the installer's private copy of the manifest is removed on exit");
  });

  test("a stale staged install script is refused before it runs, and nothing changes", async () => {
    const before = mtimes(installedFiles(first));
    const pid = pidOf(first.layout);
    const opts = { stageDir: first.stageDir, noSystemctl: true };
    const { manifest, digests } = installPayload(first, bundle);
    const conn = await connectPinned(target);
    try {
      await copyToRemote(conn, installScript(first.layout) + "# an older or half-copied script\n", stagedPath(opts, "installer"));
      const r = await exec(conn, installCommand(opts, digests), manifest);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /the staged copies are not the ones this deployment made \(stale or partial\); run pulumi up again/);
      assert.doesNotMatch(r.stdout, /mailstack-install:/);
    } finally {
      await copyToRemote(conn, installScript(first.layout), stagedPath(opts, "installer"));
      conn.end();
    }
    assert.deepEqual(mtimes(installedFiles(first)), before);
    assert.equal(pidOf(first.layout), pid);
  });

  test("a manifest cut off on stdin is refused, and nothing changes", async () => {
    const before = mtimes(installedFiles(first));
    const { manifest, digests } = installPayload(first, bundle);
    const conn = await connectPinned(target);
    try {
      const r = await exec(
        conn,
        installCommand({ stageDir: first.stageDir, noSystemctl: true }, digests),
        manifest.slice(0, manifest.length >> 1),
      );
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        new RegExp(
          `the file manifest on stdin has SHA-256 [0-9a-f]{64}, expected ${digests.files} \\(cut off or not this deployment's\\); nothing was changed`,
        ),
      );
    } finally {
      conn.end();
    }
    assert.deepEqual(mtimes(installedFiles(first)), before);
  });

  test("the delete step of an install made on another machine leaves this machine's maild running", async () => {
    const pid = pidOf(first.layout);
    await stopDeployment(target, first, "0123456789abcdef0123456789abcdef");
    assert.doesNotThrow(() => process.kill(pid, 0));
    assert.match(await smtpBanner(box.ipv4, 25), /^220 /);
  });

  test("a host presenting another key is refused before any command runs", async () => {
    const other = await ed25519KeyPair(work, "not-the-host-key");
    const marker = path.join(work, "ran-on-wrong-key");
    await assert.rejects(
      (async () => {
        const conn = await connectPinned({ ...target, hostKey: other.publicKey });
        await exec(conn, `touch ${marker}`);
        conn.end();
      })(),
      (err: Error) => err instanceof HostKeyMismatch && /host key mismatch/.test(err.message),
    );
    assert.equal(fs.existsSync(marker), false);
  });

  test("a rebuild (new root, same data directory) keeps all mail and keys, and an on-box renewed certificate", async () => {
    // Mail to alice, stored durably before the 250.
    const transport = nodemailer.createTransport({ host: box.ipv4, port: 25, secure: false, ignoreTLS: true, name: "peer.example.net" });
    await transport.sendMail({ from: "someone@example.net", to: "alice@example.test", subject: "kept across rebuilds", text: "hello" });
    const mailBefore = walk(path.join(dataDir, "mail")).filter((f) => /\/Maildir\/(new|cur)\//.test(f));
    assert.equal(mailBefore.length, 1, `expected one delivered message, found: ${mailBefore.join(", ")}`);
    const keysBefore = Object.fromEntries(walk(path.join(dataDir, "dkim")).map((f) => [f, fs.readFileSync(f, "utf8")]));
    assert.equal(Object.keys(keysBefore).length, 2);
    // The box renewed its certificate after the deploy (issued later than the deployed one).
    await new Promise((r) => setTimeout(r, 1100));
    const renewed = await selfSignedCert(work, "mail.example.test", 60, path.join(work, "mail.example.test.key"));
    fs.writeFileSync(first.layout.tlsCert, renewed.certificatePem);

    // The old machine goes away; the new one has a new root and the same volume.
    await stopDeployment(target, first);
    started.splice(started.indexOf(first), 1);
    const root2 = freshRoot(work, "root2");
    const second: Deployment = {
      layout: boxLayout({ root: root2, dataDir }),
      stageDir: path.join(root2, "root/.mailstack-deploy"),
      input: first.input,
    };
    const { summary } = await deploy(target, second, bundle);
    started.push(second);
    assert.match(summary, / actions=sieve:compile,metadata-guard:apply,maild:start,/);
    assert.doesNotMatch(
      summary,
      new RegExp(second.layout.tlsCert.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")),
      "the renewed certificate was not replaced",
    );

    const mailAfter = walk(path.join(dataDir, "mail")).filter((f) => /\/Maildir\/(new|cur)\//.test(f));
    assert.deepEqual(mailAfter, mailBefore);
    assert.match(fs.readFileSync(mailAfter[0], "utf8"), /Subject: kept across rebuilds/);
    for (const [file, pem] of Object.entries(keysBefore)) assert.equal(fs.readFileSync(file, "utf8"), pem, file);
    assert.equal(
      fs.readFileSync(dkimKeyPath(second.layout, "example.test", "s1-rsa"), "utf8"),
      first.input.domains[0].dkim[0].privateKeyPem + (first.input.domains[0].dkim[0].privateKeyPem.endsWith("\n") ? "" : "\n"),
    );
    assert.equal(fs.readFileSync(second.layout.tlsCert, "utf8"), renewed.certificatePem);
    // what the spam filter learned (Redis's files) is on the volume too, owned by the new box's redis account
    assert.equal(second.layout.redisDataDir, first.layout.redisDataDir);
    assert.equal(fs.statSync(second.layout.redisDataDir).uid, Number((await box.run(["id", "-u", "redis"])).stdout.trim()));
    assert.ok(fs.readdirSync(second.layout.redisDataDir).length > 0, "Redis wrote its files onto the volume");
    assert.match(await smtpBanner(box.ipv4, 25), /^220 mail\.example\.test/);
  });

  test("deleting the deployment stops maild cleanly (SIGTERM, graceful shutdown) and keeps the data", async () => {
    const d = started[started.length - 1];
    const pid = pidOf(d.layout);
    await stopDeployment(target, d);
    started.pop();
    assert.throws(() => process.kill(pid, 0), /ESRCH/);
    assert.equal(await acceptsConnections(box.ipv4, 25), false);
    const log = fs.readFileSync(path.join(d.layout.runDir, "maild.log"), "utf8");
    assert.match(log, /"signal":"SIGTERM"/);
    assert.ok(walk(path.join(dataDir, "mail")).length > 0, "mail is still on the data volume");
  });
});
