// On-box certificate renewal, end to end in the local internet: maild is deployed by the real
// install script (into a fresh root, started from the unit's ExecStart as the maild account) with
// a certificate that falls due a few seconds later and an `acme` section pointing at pebble. With
// nobody calling it, maild's keeper renews over HTTP-01 on maild's own port 80, installs the new
// chain beside the same key and reloads TLS for SMTP and HTTPS. A later deploy that still carries
// the older certificate (what a `pulumi up` without a re-issue sends) leaves the renewed one alone.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, createPublicKey, generateKeyPairSync, X509Certificate, type KeyObject } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tls from "node:tls";
import { LocalInternet, mustRun, type NetHost } from "../../infra/local-internet/netns";
import { startAcmeTestbed, type AcmeTestbed } from "../../infra/local-internet/pebble";
import { RawSmtp, killFromPidFile } from "../harness/maild";
import { boxLayout, MAILD_GID, MAILD_UID, type BoxLayout } from "../../server-bootstrap/install/layout";
import { deployFiles, type DeployInput } from "../../server-bootstrap/install/deploy-files";
import { renderManifest } from "../../server-bootstrap/install/file-manifest";
import { installScript } from "../../server-bootstrap/install/install-script";
import { installCommand, sha256Hex, stagedPath, stopCommand } from "../../server-bootstrap/install/deploy-commands";
import { bundleDaemon } from "../../server-bootstrap/install/daemon-bundle";
import { installCertificate } from "../../components/shared/acme/keeper";
import { splitPemChain } from "../../components/shared/acme/certificate-info";
import { TEST_DEPLOY_SPAM } from "../fixtures/deploy-spam";

const REPO = path.resolve(__dirname, "../..");
const NODE = path.join(REPO, "node_modules/node/bin/node");
const HOSTNAME = "mail.example.test";
const NAMES = [HOSTNAME, "mta-sts.example.test"];
/** the deployed certificate falls due (a third of its lifetime left) this long after it is made */
const DUE_AFTER_SECONDS = 15;

const spkiSha256 = (key: string | KeyObject) =>
  createHash("sha256")
    .update((typeof key === "string" ? createPublicKey(key) : key).export({ type: "spki", format: "der" }))
    .digest("hex");

/** openssl's GeneralizedTime for -startdate/-enddate */
const asn1Time = (d: Date) =>
  d
    .toISOString()
    .replace(/[-:T]/g, "")
    .replace(/\.\d{3}Z$/, "Z");

/**
 * A certificate for `names` with the given key and validity, self-signed: `openssl ca` is the one
 * openssl 3.0 tool that takes an arbitrary notBefore, which puts the renewal point where we want it.
 */
async function certificateWithDates(dir: string, keyFile: string, notBefore: Date, notAfter: Date): Promise<string> {
  const ca = fs.mkdtempSync(path.join(dir, "ossl-ca-"));
  const p = (f: string) => path.join(ca, f);
  fs.writeFileSync(p("index.txt"), "");
  fs.writeFileSync(p("serial"), "1000\n");
  fs.writeFileSync(
    p("ca.cnf"),
    [
      "[ca]",
      "default_ca = here",
      "[here]",
      `database = ${p("index.txt")}`,
      `new_certs_dir = ${ca}`,
      `serial = ${p("serial")}`,
      "default_md = sha256",
      "policy = any",
      "unique_subject = no",
      "copy_extensions = none",
      "x509_extensions = ext",
      "[any]",
      "commonName = supplied",
      "[ext]",
      `subjectAltName = ${NAMES.map((n) => `DNS:${n}`).join(",")}`,
      "basicConstraints = CA:FALSE",
      "",
    ].join("\n"),
  );
  await mustRun(["openssl", "req", "-new", "-key", keyFile, "-subj", `/CN=${HOSTNAME}`, "-out", p("req.csr")]);
  await mustRun([
    "openssl",
    "ca",
    "-batch",
    "-notext",
    "-config",
    p("ca.cnf"),
    "-selfsign",
    "-keyfile",
    keyFile,
    "-in",
    p("req.csr"),
    "-startdate",
    asn1Time(notBefore),
    "-enddate",
    asn1Time(notAfter),
    "-out",
    p("cert.pem"),
  ]);
  return fs.readFileSync(p("cert.pem"), "utf8");
}

/** A root directory standing in for a freshly booted box (as in deploy.test.ts). */
function freshRoot(base: string): string {
  const root = path.join(base, "root");
  fs.mkdirSync(path.join(root, "etc"), { recursive: true });
  for (const f of ["passwd", "group", "shadow", "gshadow"]) fs.copyFileSync(`/etc/${f}`, path.join(root, "etc", f));
  fs.mkdirSync(path.join(root, "usr/local/bin"), { recursive: true });
  fs.symlinkSync(NODE, path.join(root, "usr/local/bin/node"));
  return root;
}

/** The MailDaemon steps without SSH: stage the two files, run the install script in the box's namespace, manifest on stdin. */
async function deploy(box: NetHost, layout: BoxLayout, stageDir: string, bundle: string, input: DeployInput): Promise<string> {
  const opts = { stageDir, noSystemctl: true };
  fs.mkdirSync(stageDir, { recursive: true, mode: 0o700 });
  fs.copyFileSync(bundle, stagedPath(opts, "daemon"));
  fs.writeFileSync(stagedPath(opts, "installer"), installScript(layout));
  const manifest = renderManifest(deployFiles(layout, input));
  const digests = { installer: sha256Hex(installScript(layout)), daemon: sha256Hex(fs.readFileSync(bundle)), files: sha256Hex(manifest) };
  const r = await box.run(["bash", "-c", installCommand(opts, digests)], { timeoutMs: 60_000, input: manifest });
  if (r.code !== 0) throw new Error(`install failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout.trim().split("\n").pop() ?? "";
}

function logLines(layout: BoxLayout): Record<string, unknown>[] {
  const file = path.join(layout.runDir, "maild.log");
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Polls maild's log until `predicate` matches a line; fails with the log's acme lines after `ms`. */
async function waitForLog(
  layout: BoxLayout,
  predicate: (l: Record<string, unknown>) => boolean,
  ms: number,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const hit = logLines(layout).find(predicate);
    if (hit) return hit;
    if (Date.now() > deadline) {
      const acme = logLines(layout).filter((l) => String(l.event).startsWith("acme.") || l.level === "error");
      throw new Error(
        `maild did not log the awaited event within ${ms / 1000} s; its acme log:\n${acme.map((l) => JSON.stringify(l)).join("\n")}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function httpsCertificate(host: string, port: number): Promise<tls.PeerCertificate> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host, port, servername: HOSTNAME, rejectUnauthorized: false }, () => {
      const cert = s.getPeerCertificate();
      s.end();
      resolve(cert);
    });
    s.once("error", reject);
  });
}

async function smtpStarttlsCertificate(host: string): Promise<tls.PeerCertificate> {
  const smtp = await RawSmtp.connect(host, 25);
  try {
    const banner = await smtp.reply();
    assert.equal(banner.code, 220, banner.text);
    assert.equal((await smtp.command("EHLO peer.example.net")).code, 250);
    return await smtp.starttls(HOSTNAME, "peer.example.net");
  } finally {
    smtp.close();
  }
}

describe("maild renews its certificate on the box over HTTP-01 (pebble, knot, install script)", () => {
  let internet: LocalInternet;
  let box: NetHost;
  let bed: AcmeTestbed;
  let work: string;
  let layout: BoxLayout;
  let stageDir: string;
  let bundle: string;
  let input: DeployInput;
  let keyPem: string;
  let deployed: X509Certificate;
  let deployedInode: number;
  let keyInode: number;
  let firstCheck: Record<string, unknown>;
  let renewedLog: Record<string, unknown>;
  let renewedPem: string;
  let maildRunning = false;

  before(async () => {
    if (process.getuid?.() !== 0) throw new Error("maild renewal tests need root (network namespaces, chown, setpriv)");
    internet = await LocalInternet.create();
    box = await internet.addHost("box");
    bed = await startAcmeTestbed(
      internet,
      [
        {
          origin: "example.test.",
          lines: NAMES.flatMap((n) => [`${n}. 300 IN A ${box.ipv4}`, `${n}. 300 IN AAAA ${box.ipv6}`]),
        },
      ],
      { certificateValidityPeriodSeconds: 90 * 86_400 },
    );

    work = fs.mkdtempSync(path.join(os.tmpdir(), "mailstack-renewal-"));
    fs.chmodSync(work, 0o755);
    bundle = bundleDaemon(path.join(work, "bundle", "maild.js"));
    const root = freshRoot(work);
    layout = boxLayout({ root, dataDir: path.join(work, "data") });
    stageDir = path.join(root, "root/.mailstack-deploy");

    const keyFile = path.join(work, "tls-key.pem");
    keyPem = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    fs.writeFileSync(keyFile, keyPem, { mode: 0o600 });
    // Lifetime 3 days + 3/2 DUE_AFTER: a third of it is left DUE_AFTER_SECONDS from now.
    const now = Date.now();
    const certificatePem = await certificateWithDates(
      work,
      keyFile,
      new Date(now - 2 * 86_400_000),
      new Date(now + 86_400_000 + 1.5 * DUE_AFTER_SECONDS * 1000),
    );
    deployed = new X509Certificate(certificatePem);

    input = {
      hostname: HOSTNAME,
      domains: [{ name: "example.test", dkim: [] }],
      users: [],
      aliases: [],
      tls: { certificatePem, privateKeyPem: keyPem },
      spam: TEST_DEPLOY_SPAM,
      acme: {
        directoryUrl: bed.pebble.directoryUrl,
        accountKeyPem: generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "sec1", format: "pem" }).toString(),
        email: "hostmaster@example.test",
        names: NAMES,
        extraCaPem: bed.pebble.listenerCaPem,
        checkIntervalSeconds: 1,
      },
      maild: {
        listen: { smtp: [{ host: box.ipv4, port: 25 }], http: [{ host: "::", port: 80 }], https: [{ host: box.ipv4, port: 443 }] },
        dnsServers: [bed.dns.ipv4],
        shutdownTimeoutMs: 1000,
      },
    };
    await deploy(box, layout, stageDir, bundle, input);
    maildRunning = true;
    const onDisk = fs.readFileSync(layout.tlsCert, "utf8");
    if (onDisk.trim() !== certificatePem.trim()) {
      throw new Error(
        `the certificate was renewed before the test could look at the deployed one: the deploy took longer than ${DUE_AFTER_SECONDS} s`,
      );
    }
    deployedInode = fs.statSync(layout.tlsCert).ino;
    keyInode = fs.statSync(layout.tlsKey).ino;

    firstCheck = await waitForLog(layout, (l) => l.event === "acme.check", 10_000);
    renewedLog = await waitForLog(layout, (l) => l.event === "acme.check" && l.action === "renewed", 40_000);
    await waitForLog(layout, (l) => l.event === "acme.reloaded", 5_000);
    renewedPem = fs.readFileSync(layout.tlsCert, "utf8");
  });

  after(async () => {
    if (maildRunning) {
      const machine = (await box.run(["bash", "-c", "cat /etc/machine-id 2>/dev/null || hostname"])).stdout.trim();
      const r = await box.run(["bash", "-c", stopCommand({ stageDir, noSystemctl: true }, machine)], { timeoutMs: 30_000 });
      if (r.code !== 0) {
        killFromPidFile(path.join(layout.runDir, "maild.pid"));
      }
    }
    await internet?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test("the deployed certificate was not yet due at maild's first check; a later timed check renewed it, with nobody calling maild", () => {
    assert.equal(firstCheck.action, "not-due", JSON.stringify(firstCheck));
    assert.match(String(renewedLog.reason), /^a third or less of the 3 days lifetime remains/);
  });

  test("pebble validated the renewal over HTTP-01 at maild's own port 80", () => {
    const pebbleLog = fs
      .readdirSync(internet.workDir)
      .filter((d) => d.startsWith("pebble-"))
      .map((d) => fs.readFileSync(path.join(internet.workDir, d, "pebble.log"), "utf8"))
      .join("\n");
    for (const name of NAMES) {
      const escaped = name.replace(/\./g, "\\.");
      assert.match(pebbleLog, new RegExp(`Attempting to validate w/ HTTP: http://${escaped}:80/\\.well-known/acme-challenge/`), name);
    }
    assert.ok(
      logLines(layout).some((l) => l.event === "acme.installed"),
      "maild logged the installation",
    );
  });

  test("the renewed certificate is issued by pebble for the same names and expires later than the deployed one", async () => {
    const renewed = new X509Certificate(renewedPem);
    assert.notEqual(renewed.serialNumber, deployed.serialNumber);
    assert.ok(Date.parse(renewed.validTo) > Date.parse(deployed.validTo), `${renewed.validTo} is not after ${deployed.validTo}`);
    const chain = splitPemChain(renewedPem).map((pem) => new X509Certificate(pem));
    const root = new X509Certificate(await bed.pebble.issuingRootPem());
    chain.push(root);
    for (let i = 0; i + 1 < chain.length; i++)
      assert.ok(chain[i].verify(chain[i + 1].publicKey), `chain[${i}] is signed by the next certificate`);
    assert.deepEqual((renewed.subjectAltName ?? "").split(", ").sort(), NAMES.map((n) => `DNS:${n}`).sort());
  });

  test("HTTPS on 443 serves the renewed certificate", async () => {
    const served = await httpsCertificate(box.ipv4, 443);
    const renewed = new X509Certificate(renewedPem);
    assert.equal(served.serialNumber, renewed.serialNumber);
    assert.equal(Date.parse(served.valid_to), Date.parse(renewed.validTo));
  });

  test("SMTP on 25 serves the renewed certificate after STARTTLS", async () => {
    const served = await smtpStarttlsCertificate(box.ipv4);
    const renewed = new X509Certificate(renewedPem);
    assert.equal(served.serialNumber, renewed.serialNumber);
    assert.equal(Date.parse(served.valid_to), Date.parse(renewed.validTo));
  });

  test("the key stays the same: key.pem is untouched and the renewed certificate carries its public key (DANE 3 1 1 unchanged)", () => {
    assert.equal(fs.readFileSync(layout.tlsKey, "utf8").trim(), keyPem.trim());
    assert.equal(fs.statSync(layout.tlsKey).ino, keyInode);
    assert.equal(spkiSha256(new X509Certificate(renewedPem).publicKey), spkiSha256(keyPem));
  });

  test("cert.pem was replaced atomically: a new file renamed over the old, no temporary file left, owned by maild", () => {
    const st = fs.statSync(layout.tlsCert);
    assert.notEqual(st.ino, deployedInode, "an in-place write would keep the inode");
    assert.deepEqual(fs.readdirSync(layout.tlsDir).sort(), ["cert.pem", "key.pem"]);
    assert.deepEqual({ uid: st.uid, gid: st.gid }, { uid: MAILD_UID, gid: MAILD_GID });
  });

  test("the ACME account key is on the box with mode 0600, owned by maild, and never in maild's log", () => {
    const st = fs.statSync(layout.acmeAccountKey);
    assert.deepEqual({ mode: st.mode & 0o777, uid: st.uid, gid: st.gid }, { mode: 0o600, uid: MAILD_UID, gid: MAILD_GID });
    const log = fs.readFileSync(path.join(layout.runDir, "maild.log"), "utf8");
    const keyBody = input.acme!.accountKeyPem.split("\n")[1];
    assert.ok(!log.includes(keyBody) && !log.includes("PRIVATE KEY"), "no key material in the log");
  });

  test("a deploy that still carries the older certificate keeps the renewed one and restarts nothing", async () => {
    const pid = fs.readFileSync(path.join(layout.runDir, "maild.pid"), "utf8");
    const summary = await deploy(box, layout, stageDir, bundle, input);
    assert.equal(summary, "mailstack-install: changed=none actions=none");
    assert.equal(fs.readFileSync(layout.tlsCert, "utf8"), renewedPem);
    assert.equal(fs.readFileSync(path.join(layout.runDir, "maild.pid"), "utf8"), pid);
    const served = await smtpStarttlsCertificate(box.ipv4);
    assert.equal(served.serialNumber, new X509Certificate(renewedPem).serialNumber);
  });

  test("installCertificate, the keeper's own install step, refuses the older certificate too", () => {
    assert.equal(installCertificate(layout.tlsDir, input.tls.certificatePem, keyPem), "kept-newer");
    assert.equal(fs.readFileSync(layout.tlsCert, "utf8"), renewedPem);
  });
});
