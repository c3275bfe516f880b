// `npm start`'s flow (infra/demo/run-demo.ts) end to end: the local internet with the dev stack's
// DNS as the Pulumi program plans it, a certificate from pebble, maild deployed over SSH, mail
// both ways with a Postfix peer, IMAP, MTA-STS, and a teardown that leaves nothing behind.
//
// The outbound test (submission on 587, maild's queue delivering to the peer) fails until maild
// can send; it is asserted, never skipped.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { promises as dnsPromises } from "node:dns";
import { X509Certificate } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import { runCommand } from "../../infra/local-internet/netns";
import { runDemo, type DemoHandle } from "../../infra/demo/run-demo";
import { formatReport, reportFailures } from "../../infra/demo/report";
import { parseCharacterStrings } from "../../components/records/txt";
import { splitPemChain } from "../../components/shared/acme/certificate-info";
import type { CaaData, PlannedRecord, SrvData, TlsaData } from "../../components/records/types";
import { MAILD_UID } from "../../server-bootstrap/install/layout";

let demo: DemoHandle;
const progress: string[] = [];

before(async () => {
  demo = await runDemo({ write: (t) => progress.push(t) });
});
after(async () => {
  await demo?.stop();
});

function resolver(): dnsPromises.Resolver {
  const r = new dnsPromises.Resolver({ timeout: 2000, tries: 2 });
  r.setServers([demo.hosts.dns.ipv4]);
  return r;
}

/** What a resolver returns for one planned record, in the planner's terms. */
async function served(r: dnsPromises.Resolver, rec: PlannedRecord): Promise<unknown[]> {
  switch (rec.type) {
    case "A":
      return r.resolve4(rec.name);
    case "AAAA":
      return r.resolve6(rec.name);
    case "MX":
      return (await r.resolveMx(rec.name)).map((m) => `${m.priority} ${m.exchange}`);
    case "TXT":
      return (await r.resolveTxt(rec.name)).map((chunks) => JSON.stringify(chunks));
    case "CAA":
      return (await r.resolveCaa(rec.name)).map((c) => {
        const [tag, value] = Object.entries(c).find(([k]) => k !== "critical" && k !== "type")!;
        return `${c.critical} ${tag} ${value}`;
      });
    case "SRV":
      return (await r.resolveSrv(rec.name)).map((s) => `${s.priority} ${s.weight} ${s.port} ${s.name}`);
    case "TLSA":
      return (await r.resolveTlsa(rec.name)).map(
        (t) => `${t.certUsage} ${t.selector} ${t.match} ${Buffer.from(t.data).toString("hex").toUpperCase()}`,
      );
  }
}

function expected(rec: PlannedRecord): unknown {
  switch (rec.type) {
    case "MX":
      return `${rec.priority} ${rec.content}`;
    case "TXT":
      return JSON.stringify(parseCharacterStrings(rec.content).map((b) => b.toString("utf8")));
    case "CAA": {
      const d = rec.data as CaaData;
      return `${d.flags} ${d.tag} ${d.value}`;
    }
    case "SRV": {
      const d = rec.data as SrvData;
      // RFC 2782: target "." means "no such service here"; resolvers hand it back as "".
      return `${d.priority} ${d.weight} ${d.port} ${d.target.replace(/\.$/, "")}`;
    }
    case "TLSA": {
      const d = rec.data as TlsaData;
      return `${d.usage} ${d.selector} ${d.matchingType} ${d.certificate}`;
    }
    default:
      return rec.content;
  }
}

describe("npm start: the whole system in a local internet", () => {
  test("every step of the setup reports ok", () => {
    const setup = progress
      .join("")
      .split("\n")
      .filter((l) => /^\[\d+\/\d+\]/.test(l))
      .slice(0, 9);
    assert.equal(setup.length, 9, progress.join(""));
    for (const line of setup) assert.match(line, / \.\.\. ok \(\d+\.\d s\)/, line);
  });

  test("knot serves every record the Pulumi program plans for the dev stack, with the box's real addresses", async () => {
    const r = resolver();
    const records = Object.values(demo.plan.zones).flat();
    assert.deepEqual(Object.keys(demo.plan.zones).sort(), ["example.net", "example.org"]);
    assert.equal(demo.report.dns.total, records.length);
    for (const rec of records) {
      assert.ok((await served(r, rec)).includes(expected(rec)), `${rec.type} ${rec.name}: ${JSON.stringify(expected(rec))} not served`);
    }
    assert.deepEqual(await r.resolve4(demo.plan.hostname), [demo.hosts.box.ipv4]);
    assert.deepEqual(await r.resolve6(demo.plan.hostname), [demo.hosts.box.ipv6]);
  });

  test("the PTRs of both box addresses name the mail host (forward-confirmed)", async () => {
    const r = resolver();
    for (const address of [demo.hosts.box.ipv4, demo.hosts.box.ipv6]) {
      assert.deepEqual(await r.reverse(address), [demo.plan.hostname], address);
    }
    assert.deepEqual(demo.report.dns.ptr.map((p) => p.address).sort(), [demo.hosts.box.ipv4, demo.hosts.box.ipv6].sort());
  });

  test("the certificate covers the program's names, chains to pebble's root, and CAA names the account that ordered it", () => {
    const c = demo.report.certificate;
    assert.deepEqual([...c.names].sort(), [...demo.plan.certificate.names].sort());
    assert.deepEqual(c.caaAccountUris, [c.accountUrl]);
    assert.equal(c.tlsaSha256, c.spkiSha256, "DANE TLSA 3 1 1 pins the certificate's key");
    const [leaf, ...intermediates] = splitPemChain(demo.certificate.certificatePem).map((p) => new X509Certificate(p));
    const root = new X509Certificate(demo.caRootPem);
    assert.ok(leaf.verify(intermediates[0].publicKey), "leaf signed by the intermediate");
    assert.ok(intermediates[0].verify(root.publicKey), "intermediate signed by pebble's root");
  });

  test("maild runs from the deployed unit's ExecStart as the maild account and answers SMTP on both addresses", async () => {
    const pid = demo.box.maildPid();
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    assert.match(status, new RegExp(`^Uid:\\s+${MAILD_UID}\\s+${MAILD_UID}\\s+${MAILD_UID}\\s+${MAILD_UID}$`, "m"));
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
    const execStart = fs
      .readFileSync(demo.box.layout.unitFile, "utf8")
      .match(/^ExecStart=(.*)$/m)![1]
      .split(" ");
    assert.deepEqual(cmdline, execStart);
    for (const host of [demo.hosts.box.ipv4, demo.hosts.box.ipv6]) {
      const banner = await new Promise<string>((resolve, reject) => {
        const s = net.connect({ host, port: 25 });
        s.once("data", (d) => {
          s.end("QUIT\r\n");
          resolve(d.toString().split("\r\n")[0]);
        });
        s.once("error", reject);
      });
      assert.match(banner, new RegExp(`^220 ${demo.plan.hostname.replace(/\./g, "\\.")} `), host);
    }
  });

  test("inbound: the peer's Postfix delivers to the user by MX over STARTTLS, verified under MTA-STS", () => {
    const i = demo.report.inbound;
    assert.equal(i.error, undefined);
    assert.equal(i.ok, true);
    assert.match(i.tls ?? "", /^Verified TLSv1\.[23]$/);
    assert.match(
      i.relay ?? "",
      new RegExp(`^relay=${demo.plan.hostname.replace(/\./g, "\\.")}\\[(${demo.hosts.box.ipv4}|${demo.hosts.box.ipv6})\\]:25 \\(250 `),
    );
  });

  test("IMAP: the user reads the message over IMAPS with maild's spf=pass dkim=pass dmarc=pass", () => {
    assert.equal(demo.report.imap.error, undefined);
    assert.deepEqual(demo.report.imap.verdicts, { spf: "pass", dkim: "pass", dmarc: "pass" });
  });

  test("outbound: the user submits on 587 and the peer receives it with spf=pass dkim=pass dmarc=pass", () => {
    const o = demo.report.outbound;
    assert.equal(o.error, undefined);
    assert.equal(o.ok, true);
    assert.deepEqual(o.peerVerdicts, { spf: "pass", dkim: "pass", dmarc: "pass" });
  });

  test("MTA-STS: maild serves each domain's planned policy, its id is the one in DNS, and the peer enforces example.org", () => {
    const byDomain = Object.fromEntries(demo.report.mtaSts.map((m) => [m.domain, m]));
    assert.deepEqual(Object.keys(byDomain).sort(), ["example.net", "example.org"]);
    for (const m of demo.report.mtaSts) {
      assert.equal(m.error, undefined);
      assert.equal(m.matchesPlan, true);
      assert.equal(m.dnsId, m.policyId);
    }
    assert.equal(byDomain["example.org"].mode, "enforce");
    assert.match(byDomain["example.org"].peerPolicy ?? "", /^secure match=mail\.example\.org\b/);
    assert.equal(byDomain["example.net"].mode, "testing");
    assert.equal(byDomain["example.net"].peerPolicy, "");
  });

  test("spam: rspamd on the deployed files lets the peer's authenticated mail into the inbox and refuses GTUBE with 550 5.7.1", async () => {
    const s = demo.report.spam;
    assert.deepEqual([s.ok, s.inbound?.outcome, s.gtubeReply], [true, "inbox", "550 5.7.1 Message refused as spam: Gtube pattern"]);
    const stat = await demo.box.spam.stat();
    assert.ok(stat.scanned >= 3, `rspamd scanned the inbound, the submitted and the GTUBE message (${stat.scanned})`);
    assert.ok(stat.actions.reject >= 1);
  });

  test("the report names every failed check and nothing else", () => {
    const text = formatReport(demo.report);
    const failures = reportFailures(demo.report);
    for (const f of failures) assert.ok(text.includes(f), f);
    assert.equal(text.includes("All checks passed."), failures.length === 0);
  });

  test("a host added afterwards (where e2e tests run `mailstack check`) resolves the mail host through knot and reaches it on both addresses", async () => {
    const checker = await demo.addHost("checker");
    const dig = await checker.run(["dig", "+short", "AAAA", demo.plan.hostname]);
    assert.equal(dig.stdout.trim(), demo.hosts.box.ipv6);
    for (const address of [demo.hosts.box.ipv4, demo.hosts.box.ipv6]) {
      const r = await checker.run(["bash", "-c", `exec 3<>/dev/tcp/${address}/443`]);
      assert.equal(r.code, 0, `${address}:443 ${r.stderr}`);
    }
  });

  test("stop() leaves no namespace and no process of the demo behind", async () => {
    const maild = demo.box.maildPid();
    const prefix = demo.internet.prefix;
    await demo.stop();
    const namespaces = (await runCommand(["ip", "netns", "list"])).stdout.split("\n").filter((l) => l.startsWith(`${prefix}-`));
    assert.deepEqual(namespaces, []);
    assert.throws(() => process.kill(maild, 0), /ESRCH/);
    // Every server ran with its configuration under the work directory: none may still run.
    const survivors = fs
      .readdirSync("/proc")
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          return fs.readFileSync(`/proc/${p}/cmdline`, "utf8").includes(demo.internet.workDir);
        } catch {
          return false; // exited while we looked
        }
      });
    assert.deepEqual(survivors, []);
    assert.equal(fs.existsSync(demo.internet.workDir), false);
  });
});
