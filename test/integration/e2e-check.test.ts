// Issue 7 end to end: `npm start`'s flow (runDemo: the dev stack's DNS in knot, a certificate from
// pebble, maild deployed over SSH, Dovecot) checked from outside by the real `mailstack check`
// command, then broken on purpose, one thing at a time. The healthy system passes every check;
// each breakage fails exactly the checks it concerns and nothing else.
//
// One demo serves the whole file: each breakage is undone before the next test, except the
// closed port (Dovecot stopped), which comes last.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseDocument } from "yaml";
import { runCommand, type NetHost } from "../../infra/local-internet/netns";
import { httpsGetText } from "../../infra/local-internet/pebble";
import { DEMO_CAA_IDENTITY, runDemo, type DemoHandle } from "../../infra/demo/run-demo";
import { stackFilePath } from "../../infra/cli/plan";
import { reverseZone } from "../../infra/demo/zones";
import { reverseName } from "../../components/records/address";
import { dkimTxt } from "../../components/records/dkim";
import { parseTxtContent, txtContent } from "../../components/records/txt";
import type { CheckJson } from "../../infra/cli/check-format";
import { issueWithDates } from "../../infra/local-internet/test-tls";
import { acceptsConnections } from "../../infra/local-internet/wait-for-port";
import { checkRow, failingChecks, mailstackArgv, notPassingChecks } from "../harness/mailstack-cli";

const ROOT = path.resolve(__dirname, "..", "..");
const DOMAIN = "example.org";

let demo: DemoHandle;
/** where `mailstack check` runs: a host of the local internet that resolves through knot */
let checker: NetHost;
let dkimKeysFile: string;
/** a Pulumi project whose dev stack is the one the demo deployed (see before) */
let projectDir: string;

before(async () => {
  // The demo's progress lines are for people; its failures reject with their reason.
  demo = await runDemo({ write: () => undefined });
  checker = await demo.addHost("checker");
  // What `pulumi stack output dkimPublicKeys --json` prints: the public halves of the keys the
  // program generated and deployed, read here from the records it planned for them.
  const keys = Object.values(demo.plan.zones)
    .flat()
    .filter((r) => r.type === "TXT" && r.name.endsWith(`._domainkey.${DOMAIN}`))
    .map((r) => {
      const value = parseTxtContent(r.content);
      return { selector: r.name.split(".")[0], algorithm: /k=(\w+)/.exec(value)![1], publicKeyB64: /p=([A-Za-z0-9+/=]+)/.exec(value)![1] };
    });
  assert.ok(keys.length > 0, "the plan publishes no DKIM key for example.org");
  dkimKeysFile = path.join(demo.internet.workDir, "dkim-public-keys.json");
  fs.writeFileSync(dkimKeysFile, JSON.stringify({ [DOMAIN]: keys }));

  // The demo points the dev stack at its own ACME CA (CAA names pebble, not Let's Encrypt); the
  // check compares with the stack file as a user would have it after
  // `pulumi config set --path mailstack:acme.directory ...` (and caaIdentity).
  projectDir = path.join(demo.internet.workDir, "check-project");
  fs.mkdirSync(path.join(projectDir, "stacks"), { recursive: true });
  fs.copyFileSync(path.join(demo.projectDir, "Pulumi.yaml"), path.join(projectDir, "Pulumi.yaml"));
  const stackFile = parseDocument(fs.readFileSync(stackFilePath(demo.projectDir, "dev"), "utf8"));
  stackFile.setIn(["config", "mailstack:acme", "directory"], demo.pebble.directoryUrl);
  stackFile.setIn(["config", "mailstack:acme", "caaIdentity"], DEMO_CAA_IDENTITY);
  fs.writeFileSync(stackFilePath(projectDir, "dev"), stackFile.toString());
});

after(async () => {
  await demo?.stop();
});

async function check(): Promise<{ code: number; report: CheckJson }> {
  const argv = mailstackArgv(
    "check",
    DOMAIN,
    "--stack",
    "dev",
    "--project",
    projectDir,
    "--resolver",
    demo.hosts.dns.ipv4,
    "--ca",
    demo.caRootPemPath,
    "--ipv4",
    demo.hosts.box.ipv4,
    "--ipv6",
    demo.boxIpv6Network,
    "--acme-account",
    demo.certificate.accountUrl,
    "--dkim-keys",
    dkimKeysFile,
    "--json",
  );
  const r = await checker.run(argv, { cwd: ROOT, timeoutMs: 120_000 });
  let report: CheckJson;
  try {
    report = JSON.parse(r.stdout) as CheckJson;
  } catch {
    assert.fail(`mailstack check --json printed no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  return { code: r.code, report };
}

/** The line knot was started with for `owner type` (without the planner's trailing comment). */
function servedLine(zone: string, owner: string, type: string): string {
  const lines = demo.zones
    .find((z) => z.origin === zone)
    ?.lines.filter((l) => {
      const [o, , , t] = l.split(/\s+/);
      return o === `${owner}.` && t === type;
    });
  assert.equal(lines?.length, 1, `expected one ${type} record for ${owner} in zone ${zone}`);
  return lines![0].replace(/ ; [^"]*$/, "");
}

/** Replaces a record in knot for the duration of `body`, then puts the served one back. */
async function withRecord(zone: string, owner: string, type: string, line: string, body: () => Promise<void>): Promise<void> {
  const original = servedLine(zone, owner, type);
  await demo.knot.addRecords(zone, [line]);
  try {
    await body();
  } finally {
    await demo.knot.addRecords(zone, [original]);
  }
}

/** Lines of maild's log (one JSON object each) with this event. */
function maildEvents(event: string): number {
  const text = fs.existsSync(demo.box.maildLogPath) ? fs.readFileSync(demo.box.maildLogPath, "utf8") : "";
  return text.split("\n").filter((l) => l.includes(`"event":"${event}"`)).length;
}

/** SIGHUP maild (what a deploy does) and wait until it has reloaded its certificate. */
async function reloadMaild(): Promise<void> {
  const before = { ok: maildEvents("config.reloaded"), failed: maildEvents("config.reload_failed") + maildEvents("web.reload_failed") };
  process.kill(demo.box.maildPid(), "SIGHUP");
  const deadline = Date.now() + 10_000;
  while (maildEvents("config.reloaded") === before.ok) {
    assert.ok(Date.now() < deadline, `maild did not reload within 10 s; see ${demo.box.maildLogPath}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(maildEvents("config.reload_failed") + maildEvents("web.reload_failed"), before.failed, "maild refused the reload");
}

/**
 * The box's own certificate key and names, signed by pebble's own intermediate (pebble's
 * management API hands out its keys), valid only in January 2024: the one fault is expiry.
 */
async function expiredChain(): Promise<string> {
  const dir = path.join(demo.internet.workDir, "expired-cert");
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const p = (f: string) => path.join(dir, f);
  const management = `https://${demo.hosts.ca.ipv4}:15000`;
  const intermediatePem = await httpsGetText(`${management}/intermediates/0`, demo.pebble.listenerCaPem);
  fs.writeFileSync(p("intermediate.pem"), intermediatePem);
  fs.writeFileSync(p("intermediate.key"), await httpsGetText(`${management}/intermediate-keys/0`, demo.pebble.listenerCaPem), {
    mode: 0o600,
  });
  fs.writeFileSync(p("box.key"), demo.plan.deploy.tls.privateKeyPem, { mode: 0o600 });
  const expired = await issueWithDates(dir, {
    keyPath: p("box.key"),
    names: [demo.plan.hostname, ...demo.certificate.names.filter((n) => n !== demo.plan.hostname)],
    caCertPath: p("intermediate.pem"),
    caKeyPath: p("intermediate.key"),
    notBefore: "20240101000000Z",
    notAfter: "20240201000000Z",
  });
  return `${expired.trim()}\n${intermediatePem.trim()}\n`;
}

/** The Dovecot master the demo started on the box (found by its configuration file, in the box's namespace). */
async function dovecotPid(): Promise<number> {
  const pids = (await runCommand(["ip", "netns", "pids", demo.hosts.box.ns])).stdout.split("\n").filter(Boolean).map(Number);
  const want = ["/usr/sbin/dovecot", "-F", "-c", demo.box.dovecotConfPath].join("\0");
  const found = pids.filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0$/, "") === want;
    } catch {
      return false; // exited while we looked
    }
  });
  assert.equal(found.length, 1, `expected one Dovecot master in ${demo.hosts.box.ns}, found ${found.length}`);
  return found[0];
}

describe("mailstack check against the system npm start runs", () => {
  test("the healthy system passes every check (exit 0)", async (t) => {
    const { code, report } = await check();
    t.diagnostic(`not passing: ${notPassingChecks(report)}`);
    assert.deepEqual(failingChecks(report), [], notPassingChecks(report));
    assert.equal(code, 0, notPassingChecks(report));
    assert.equal(report.stack, "dev");
    assert.equal(report.hostname, demo.plan.hostname);
    // Compared with what was really deployed, on every port of both addresses.
    for (const port of [25, 587, 465, 993, 443]) {
      for (const family of ["ipv4", "ipv6"])
        assert.equal(checkRow(report, `tls.${port}.${family}`).status, "pass", `tls.${port}.${family}`);
    }
    for (const selector of ["s1-rsa", "s1-ed25519"])
      assert.match(checkRow(report, `dkim.${selector}`).detail, /matches the deployed key/, selector);
    assert.match(
      checkRow(report, "ptr.ipv4").detail,
      new RegExp(`^${demo.hosts.box.ipv4.replace(/\./g, "\\.")} -> ${demo.plan.hostname.replace(/\./g, "\\.")} -> `),
    );
    assert.match(checkRow(report, "tlsa").detail, /^3 1 1 .* matches /);
    assert.match(checkRow(report, "caa").detail, /^issue: pebble\.internet\.test\b.*\(as planned\)$/);
  });

  test("a PTR for the box's IPv4 that names another host fails ptr.ipv4 only", async () => {
    const owner = reverseName(demo.hosts.box.ipv4);
    await withRecord(reverseZone(demo.hosts.box.ipv4), owner, "PTR", `${owner}. 300 IN PTR other.example.org.`, async () => {
      const { code, report } = await check();
      assert.equal(code, 1);
      assert.deepEqual(failingChecks(report), ["ptr.ipv4"], notPassingChecks(report));
      assert.match(checkRow(report, "ptr.ipv4").detail, /is other\.example\.org, not the mail host mail\.example\.org/);
    });
  });

  test("an _mta-sts id that is not the served policy's fails mta-sts.record only", async () => {
    const owner = `_mta-sts.${DOMAIN}`;
    await withRecord(DOMAIN, owner, "TXT", `${owner}. 300 IN TXT "v=STSv1; id=20240101000000"`, async () => {
      const { code, report } = await check();
      assert.equal(code, 1);
      assert.deepEqual(failingChecks(report), ["mta-sts.record"], notPassingChecks(report));
      assert.match(checkRow(report, "mta-sts.record").detail, /^id=20240101000000 is stale/);
    });
  });

  test("an expired certificate on maild fails TLS on 25, 587, 465 and 443 (and the policy fetch over 443)", async () => {
    const certPath = demo.box.layout.tlsCert;
    const good = fs.readFileSync(certPath, "utf8");
    fs.writeFileSync(certPath, await expiredChain());
    try {
      await reloadMaild();
      const { code, report } = await check();
      assert.equal(code, 1);
      const tlsRows = [25, 587, 465, 443].flatMap((port) => [`tls.${port}.ipv4`, `tls.${port}.ipv6`]);
      // Senders fetch the MTA-STS policy from maild's HTTPS listener: with its certificate expired,
      // the policy is unusable (RFC 8461 3.3), so mta-sts.policy fails for the same reason.
      assert.deepEqual(failingChecks(report), [...tlsRows, "mta-sts.policy"].sort(), notPassingChecks(report));
      for (const name of tlsRows) assert.match(checkRow(report, name).detail, /certificate expired on 2024-02-01/, name);
      // Dovecot keeps the certificate it loaded at start; DANE 3 1 1 pins the key, not the dates.
      assert.equal(checkRow(report, "tls.993.ipv4").status, "pass");
      assert.equal(checkRow(report, "tlsa").status, "pass");
    } finally {
      fs.writeFileSync(certPath, good);
      await reloadMaild();
    }
  });

  test("a DKIM record holding another key than the deployed one fails that selector only", async () => {
    const owner = `s1-rsa._domainkey.${DOMAIN}`;
    const other = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" }).toString("base64");
    const line = `${owner}. 300 IN TXT ${txtContent(dkimTxt({ selector: "s1-rsa", algorithm: "rsa", publicKeyB64: other }))}`;
    await withRecord(DOMAIN, owner, "TXT", line, async () => {
      const { code, report } = await check();
      assert.equal(code, 1);
      assert.deepEqual(failingChecks(report), ["dkim.s1-rsa"], notPassingChecks(report));
      assert.match(checkRow(report, "dkim.s1-rsa").detail, /not the deployed key of selector s1-rsa/);
    });
  });

  // Last: Dovecot stays stopped (the demo's stop() copes with a server that is already gone).
  test("with Dovecot stopped, IMAPS (993) is closed and fails tls.993.* only", async () => {
    const pid = await dovecotPid();
    process.kill(pid, "SIGTERM");
    const deadline = Date.now() + 10_000;
    while (await acceptsConnections(demo.hosts.box.ipv4, 993)) {
      assert.ok(Date.now() < deadline, "Dovecot still listens on 993 10 s after SIGTERM");
      await new Promise((r) => setTimeout(r, 50));
    }
    const { code, report } = await check();
    assert.equal(code, 1);
    assert.deepEqual(failingChecks(report), ["tls.993.ipv4", "tls.993.ipv6"], notPassingChecks(report));
    assert.match(checkRow(report, "tls.993.ipv4").detail, /connection refused/);
  });
});
