// `mailstack check example.org --stack dev` against a live setup in the local internet: knot serves
// the planned zones of the dev stack (planned with the mail host's real addresses) and the reverse
// zones, the mail host runs maild (25, 587, 465, 443) and Dovecot (993) with a test CA. The healthy
// setup passes every check; each breakage is reported as a failure of exactly the check it concerns.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { LocalInternet, mustRun, type NetHost } from "../../infra/local-internet/netns";
import { startKnot, type KnotServer } from "../../infra/local-internet/knot";
import { startDovecot, type DovecotServer } from "../../infra/local-internet/dovecot";
import { issueWithDates, makeTestTls, type TestTls } from "../../infra/local-internet/test-tls";
import { startMaild, type MaildProcess } from "../harness/maild";
import { planStack, UNKNOWN_RSA_KEY } from "../../infra/cli/plan";
import { formatZones } from "../../infra/cli/plan-format";
import { readStackFile } from "../../components/config/stack-file";
import { validateStackConfig } from "../../components/config/validate";
import { mtaStsPolicy } from "../../components/records/mta-sts";
import { reverseName } from "../../components/records/address";
import { spkiSha256FromPem } from "../../components/records/tlsa";
import { dkimTxt } from "../../components/records/dkim";
import { parseTxtContent, txtContent } from "../../components/records/txt";
import type { DomainSpec } from "../../components/spec";
import type { CheckJson } from "../../infra/cli/check-format";
import { checkRow, failingChecks, mailstackArgv, notPassingChecks } from "../harness/mailstack-cli";

const ROOT = path.resolve(__dirname, "..", "..");
const DOMAIN = "example.org";
const HOST = "mail.example.org";
const ACCOUNT = "https://acme-staging-v02.api.letsencrypt.org/acme/acct/123";
// The plan puts the host at ::1 of its /64 (Hetzner's convention); the mail host gets that
// address in a /64 of its own, reachable from the client over the shared link.
const V6_NET = "2001:db8:2::";
const MX_V6 = "2001:db8:2::1";

let internet: LocalInternet;
let dns: NetHost;
let mx: NetHost;
let client: NetHost;
let knot: KnotServer;
let certs: TestTls;
let maild: MaildProcess;
let dovecot: DovecotServer;
let keysFile: string;
let spec: { domains: DomainSpec[] };
/** the zone lines knot was started with, by "owner TYPE" */
const original = new Map<string, string[]>();

/** Zone-file records without directives and without the planner's trailing comments. */
function zoneLines(text: string): string[] {
  return text
    .split("\n")
    .filter((l) => l.trim() && !l.startsWith("$") && !l.startsWith(";"))
    .map((l) => l.replace(/ ; [^"]*$/, ""));
}

function remember(lines: string[]): void {
  for (const l of lines) {
    const [owner, , , type] = l.split(/\s+/);
    const key = `${owner} ${type}`;
    original.set(key, [...(original.get(key) ?? []), l]);
  }
}

async function restore(zone: string, owner: string, type: string): Promise<void> {
  const lines = original.get(`${owner}. ${type}`);
  assert.ok(lines, `no original ${type} record for ${owner}`);
  await knot.addRecords(zone, lines);
}

/** A certificate for the mail host's key, signed by the test CA, valid only in January 2024. */
async function expiredCertificate(dir: string): Promise<string> {
  const caKey = certs.caPath.replace(/ca\.pem$/, "ca.key");
  assert.ok(fs.existsSync(caKey), `test CA key not found at ${caKey}`);
  return issueWithDates(dir, {
    keyPath: certs.keyPath,
    names: [HOST, `mta-sts.${DOMAIN}`],
    caCertPath: certs.caPath,
    caKeyPath: caKey,
    notBefore: "20240101000000Z",
    notAfter: "20240201000000Z",
  });
}

/** SIGHUP maild and wait until it logged one more successful reload. */
async function reloadMaild(): Promise<void> {
  const reloads = () => maild.logs().filter((l) => l.event === "config.reloaded").length;
  const before = reloads();
  maild.signal("SIGHUP");
  const deadline = Date.now() + 10_000;
  while (reloads() === before) {
    const failed = maild.logs().find((l) => l.event === "config.reload_failed");
    assert.equal(failed, undefined, `maild refused the reload: ${JSON.stringify(failed)}`);
    assert.ok(Date.now() < deadline, "maild did not reload within 10 s");
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function check(...extra: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  // From the client host, as an outside observer: every query to knot, every connection over the link.
  const argv = mailstackArgv(
    "check",
    DOMAIN,
    "--stack",
    "dev",
    "--resolver",
    dns.ipv4,
    "--ca",
    certs.caPath,
    "--ipv4",
    mx.ipv4,
    "--ipv6",
    V6_NET,
    "--acme-account",
    ACCOUNT,
    "--dkim-keys",
    keysFile,
    "--timeout",
    "4000",
    ...extra,
  );
  return new Promise((resolve, reject) => {
    const child = spawn("ip", ["netns", "exec", client.ns, ...argv], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (code === null) reject(new Error(`mailstack check was killed by ${signal}:\n${stdout}\n${stderr}`));
      else resolve({ code, stdout, stderr });
    });
  });
}

async function checkJson(): Promise<{ code: number; report: CheckJson }> {
  const r = await check("--json");
  let report: CheckJson;
  try {
    report = JSON.parse(r.stdout) as CheckJson;
  } catch {
    assert.fail(`--json output does not parse (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  return { code: r.code, report };
}

describe("mailstack check against a live mail host in the local internet", () => {
  before(async () => {
    internet = await LocalInternet.create();
    dns = await internet.addHost("dns");
    mx = await internet.addHost("mx");
    client = await internet.addHost("client");
    await mustRun(["ip", "-n", mx.ns, "-6", "addr", "add", `${MX_V6}/64`, "dev", "eth0", "nodad"]);
    await mustRun(["ip", "-n", client.ns, "-6", "route", "add", `${V6_NET}/64`, "dev", "eth0"]);

    spec = validateStackConfig(readStackFile(path.join(ROOT, "stacks", "Pulumi.dev.yaml")));
    const tlsNames = [HOST, ...spec.domains.flatMap((d) => [`mta-sts.${d.name}`, `autoconfig.${d.name}`, `autodiscover.${d.name}`])];
    certs = await makeTestTls(path.join(internet.workDir, "tls"), tlsNames, "mx");

    // The dev stack planned with the mail host's real addresses: what `pulumi up` would publish.
    const plan = await planStack({ stack: "dev", projectDir: ROOT, ipv4: mx.ipv4, ipv6: V6_NET, acmeAccount: ACCOUNT });
    // The plan's RSA DKIM keys are made at `pulumi up` (the plan holds a marker): each gets a
    // deployed key here, published as the program publishes it.
    const deployedRsa = new Map<string, string>();
    const deployedRsaKey = (name: string) => {
      if (!deployedRsa.has(name)) {
        const { publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
        deployedRsa.set(name, publicKey.export({ type: "spki", format: "der" }).toString("base64"));
      }
      return deployedRsa.get(name)!;
    };
    const withDeployedKey = (content: string, name: string) => parseTxtContent(content).replace(UNKNOWN_RSA_KEY, deployedRsaKey(name));
    const zones = new Map<string, string[]>();
    for (const chunk of formatZones(plan)
      .split(/(?=^\$ORIGIN )/m)
      .filter((c) => c.trim())) {
      const origin = /^\$ORIGIN (\S+)\.$/m.exec(chunk)![1];
      // The offline plan's TLS key is a stand-in; the deployed server's key is the one DANE pins.
      const lines = zoneLines(chunk).map((l) =>
        / IN TLSA 3 1 1 [0-9A-Fa-f]{64}/.test(l)
          ? l.replace(/3 1 1 [0-9A-Fa-f]{64}/, `3 1 1 ${spkiSha256FromPem(fs.readFileSync(certs.keyPath, "utf8"))}`)
          : l,
      );
      for (const r of plan.zones[origin] ?? []) {
        if (r.type === "TXT" && r.content.includes(UNKNOWN_RSA_KEY))
          lines.push(`${r.name}. 300 IN TXT ${txtContent(withDeployedKey(r.content, r.name))}`);
      }
      zones.set(origin, lines);
      remember(lines);
    }
    // What `pulumi stack output dkimPublicKeys --json` would print for the deployed keys.
    const dkimKeys = Object.values(plan.zones)
      .flat()
      .filter((r) => r.name.endsWith(`._domainkey.${DOMAIN}`))
      .map((r) => {
        const value = withDeployedKey(r.content, r.name);
        return { selector: r.name.split(".")[0], algorithm: /k=(\w+)/.exec(value)![1], publicKeyB64: /p=(\S+)/.exec(value)![1] };
      });
    keysFile = path.join(internet.workDir, "dkim-keys.json");
    fs.writeFileSync(keysFile, JSON.stringify({ [DOMAIN]: dkimKeys }));

    const reverse4 = `${mx.ipv4.split(".").slice(0, 3).reverse().join(".")}.in-addr.arpa`;
    const reverse6 = reverseName(MX_V6).split(".").slice(16).join(".");
    const ptr = [`${reverseName(mx.ipv4)}. 300 IN PTR ${HOST}.`, `${reverseName(MX_V6)}. 300 IN PTR ${HOST}.`];
    remember(ptr);
    knot = await startKnot(internet, dns, [
      ...[...zones].map(([origin, lines]) => ({ origin, lines })),
      { origin: reverse4, lines: [ptr[0]] },
      { origin: reverse6, lines: [ptr[1]] },
    ]);
    await internet.setResolver(dns.ipv4);

    const dataDir = path.join(internet.workDir, "data");
    fs.mkdirSync(dataDir, { mode: 0o700 });
    const both = (port: number) => [
      { host: mx.ipv4, port },
      { host: MX_V6, port },
    ];
    maild = await startMaild(internet, mx, {
      hostname: HOST,
      dataDir,
      tls: { certPath: certs.certPath, keyPath: certs.keyPath },
      domains: spec.domains.map((d) => ({ name: d.name, mtaStsPolicy: mtaStsPolicy(d, [HOST]) })),
      users: [],
      aliases: [],
      listen: { smtp: both(25), submission: both(587), submissions: both(465), https: both(443), http: [] },
    });
    dovecot = await startDovecot(internet, { ...mx, ipv6: MX_V6 }, { dataDir, users: [], tls: certs });
  });

  after(async () => {
    await internet?.destroy();
  });

  test("the healthy setup passes every check, --json parses, exit status 0", async () => {
    const { code, report } = await checkJson();
    assert.equal(report.summary.fail + report.summary.warn, 0, notPassingChecks(report));
    assert.equal(code, 0);
    assert.equal(report.stack, "dev");
    assert.equal(report.hostname, HOST);
    const ports = ["25", "587", "465", "993", "443"].flatMap((p) => [`tls.${p}.ipv4`, `tls.${p}.ipv6`]);
    assert.deepEqual(
      report.checks.map((c) => c.check).sort(),
      [
        "mx",
        "address.ipv4",
        "address.ipv6",
        "ptr.ipv4",
        "ptr.ipv6",
        "spf.domain",
        "spf.helo",
        "dkim.s1-rsa",
        "dkim.s1-ed25519",
        "dmarc",
        "tlsrpt",
        "mta-sts.record",
        "mta-sts.policy",
        "mta-sts.mx",
        "caa",
        ...ports,
        "tlsa",
      ].sort(),
    );
    assert.match(checkRow(report, "tls.25.ipv4").detail, /^TLSv1\.[23]; certificate valid until/);
    assert.match(checkRow(report, "ptr.ipv6").detail, new RegExp(`^${MX_V6} -> ${HOST} -> ${MX_V6}$`));
    assert.match(checkRow(report, "dkim.s1-rsa").detail, /2048-bit RSA key, matches the deployed key/);
    assert.match(checkRow(report, "tlsa").detail, /^3 1 1 .* matches /);
  });

  test("the table names every check and ends with the summary line", async () => {
    const r = await check();
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^mailstack check example\.org: mail host mail\.example\.org, against the plan of stack dev$/m);
    assert.match(r.stdout, /^CHECK +STATUS +TARGET +DETAIL$/m);
    assert.match(r.stdout, /^mta-sts\.record +pass +_mta-sts\.example\.org +id=[0-9a-f]{20} \(as planned\)$/m);
    assert.match(r.stdout, /\n26 checks: 26 pass, 0 warn, 0 fail\n$/);
  });

  test("a PTR that names another host fails ptr.ipv4 only", async () => {
    const zone = `${mx.ipv4.split(".").slice(0, 3).reverse().join(".")}.in-addr.arpa`;
    await knot.addRecords(zone, [`${reverseName(mx.ipv4)}. 300 IN PTR other.example.org.`]);
    try {
      const { code, report } = await checkJson();
      assert.equal(code, 1);
      assert.deepEqual(failingChecks(report), ["ptr.ipv4"], notPassingChecks(report));
      assert.match(checkRow(report, "ptr.ipv4").detail, /PTR of .* is other\.example\.org, not the mail host mail\.example\.org/);
    } finally {
      await restore(zone, reverseName(mx.ipv4), "PTR");
    }
  });

  test("an _mta-sts id that is not the planned policy's fails mta-sts.record as stale", async () => {
    await knot.addRecords(DOMAIN, [`_mta-sts.${DOMAIN}. 300 IN TXT "v=STSv1; id=20240101000000"`]);
    try {
      const { code, report } = await checkJson();
      assert.equal(code, 1);
      assert.deepEqual(failingChecks(report), ["mta-sts.record"], notPassingChecks(report));
      assert.match(checkRow(report, "mta-sts.record").detail, /^id=20240101000000 is stale: the planned policy has id=[0-9a-f]{20}/);
    } finally {
      await restore(DOMAIN, `_mta-sts.${DOMAIN}`, "TXT");
    }
  });

  test("a served policy that is not the planned one (id unchanged) fails mta-sts.policy", async () => {
    const config = JSON.parse(fs.readFileSync(maild.configPath, "utf8")) as { domains: { name: string; mtaStsPolicy: string }[] };
    const deployed = fs.readFileSync(maild.configPath, "utf8");
    const domainSpec = spec.domains.find((d) => d.name === DOMAIN)!;
    config.domains.find((d) => d.name === DOMAIN)!.mtaStsPolicy = mtaStsPolicy(
      { ...domainSpec, mtaSts: { mode: "enforce", maxAge: 1209600 } },
      [HOST],
    );
    // maild reads the policy at start (a redeploy restarts it).
    await maild.stop();
    fs.writeFileSync(maild.configPath, JSON.stringify(config));
    await maild.restart();
    try {
      const { code, report } = await checkJson();
      assert.equal(code, 1);
      assert.deepEqual(failingChecks(report), ["mta-sts.policy"], notPassingChecks(report));
      assert.match(checkRow(report, "mta-sts.policy").detail, /the served policy is not the planned one/);
    } finally {
      await maild.stop();
      fs.writeFileSync(maild.configPath, deployed);
      await maild.restart();
    }
  });

  test("an expired certificate fails TLS on the ports that serve it; DANE-EE still matches the key", async () => {
    const good = fs.readFileSync(certs.certPath, "utf8");
    fs.writeFileSync(certs.certPath, await expiredCertificate(path.join(internet.workDir, "expired")));
    await reloadMaild();
    try {
      const { code, report } = await checkJson();
      assert.equal(code, 1);
      for (const name of ["tls.25.ipv4", "tls.25.ipv6", "tls.443.ipv4", "tls.443.ipv6"]) {
        assert.equal(checkRow(report, name).status, "fail", name);
        assert.match(checkRow(report, name).detail, /certificate expired on 2024-02-01/, name);
      }
      // The policy host serves the same certificate: senders ignore the policy.
      assert.equal(checkRow(report, "mta-sts.policy").status, "fail");
      assert.equal(checkRow(report, "tls.993.ipv4").status, "pass", "Dovecot still serves the valid certificate");
      assert.equal(checkRow(report, "tlsa").status, "pass", "3 1 1 pins the key, not the certificate's dates");
    } finally {
      fs.writeFileSync(certs.certPath, good);
      await reloadMaild();
    }
  });

  test("a DKIM key in DNS that is not the deployed one fails that selector only", async () => {
    const other = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" }).toString("base64");
    await knot.addRecords(DOMAIN, [
      `s1-rsa._domainkey.${DOMAIN}. 300 IN TXT ${txtContent(dkimTxt({ selector: "s1-rsa", algorithm: "rsa", publicKeyB64: other }))}`,
    ]);
    try {
      const { code, report } = await checkJson();
      assert.equal(code, 1);
      assert.deepEqual(failingChecks(report), ["dkim.s1-rsa"], notPassingChecks(report));
      assert.match(checkRow(report, "dkim.s1-rsa").detail, /not the deployed key of selector s1-rsa/);
    } finally {
      await restore(DOMAIN, `s1-rsa._domainkey.${DOMAIN}`, "TXT");
    }
  });

  test("a closed port fails its TLS checks: Dovecot stopped, 993 refuses connections", async () => {
    await dovecot.stop();
    const { code, report } = await checkJson();
    assert.equal(code, 1);
    assert.deepEqual(failingChecks(report), ["tls.993.ipv4", "tls.993.ipv6"], notPassingChecks(report));
    assert.match(checkRow(report, "tls.993.ipv4").detail, /connection refused/);
  });
});
