// Operations end to end in the local internet: knot serves a test DNSBL listing the box's address;
// maild's monitor finds it, `mailstack check` reports it, one alert goes out (mail to the
// postmaster and a webhook), the digest shows it with its delisting link, and after delisting one
// "cleared" follows. A DMARC aggregate report (gzip) and a TLSRPT report (gzip) mailed by the
// Postfix peer to our rua are read on delivery and show up in the digest and on the status page.
// Our own TLSRPT report for the peer's domain reaches the Postfix peer DKIM-signed: opendkim (the
// peer's milter) and dkimverify (python3-dkim) verify it, Python's email and json modules read it.
// The status page in headless Chromium: log in, both charts drawn, the blocklist hit listed.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as https from "node:https";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { gzipSync } from "node:zlib";
import SMTPConnection from "nodemailer/lib/smtp-connection";
import { chromium, type Browser } from "playwright-core";
import { LocalInternet, type NetHost } from "../../infra/local-internet/netns";
import { startKnot, type KnotServer } from "../../infra/local-internet/knot";
import { makeTestTls, type TestTls } from "../../infra/local-internet/test-tls";
import { startPostfix, type PostfixPeer } from "../../infra/local-internet/postfix";
import { startMaild, type MaildProcess } from "../harness/maild";
import { chromiumLaunchOptions } from "../harness/chromium";
import { argon2idHash } from "../../components/shared/argon2id";
import { blocklistQueryName } from "../../components/shared/dnsbl";
import { txtContent } from "../../components/records/txt";
import { maildConfig } from "../fixtures/maild-config";
import { dmarcAggregateXml, reportMessage, tlsrptJson } from "../fixtures/report-samples";
import { runCheck } from "../../infra/cli/check";
import { CHART_COLOURS } from "../../server-bootstrap/maild/web/status/status-client";
import { statePath, writeState } from "../../server-bootstrap/maild/monitoring/alerts";

const MAIL_UID = 65534;
const ALICE_PASSWORD = "alice's long passphrase";

async function until<T>(what: string, timeoutMs: number, probe: () => T | undefined | false | Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function maildir(dataDir: string, user: string): string[] {
  const dir = path.join(dataDir, "mail", "example.org", user, "Maildir");
  const out: string[] = [];
  for (const sub of ["new", "cur"]) {
    const d = path.join(dir, sub);
    if (fs.existsSync(d)) for (const f of fs.readdirSync(d).sort()) out.push(fs.readFileSync(path.join(d, f), "utf8"));
  }
  return out;
}

const subjectOf = (m: string) => /^Subject: (.*)$/m.exec(m)?.[1] ?? "";
/** The decoded text part of a message we wrote (quoted-printable). */
const textOf = (m: string) =>
  m
    .slice(m.indexOf("\n\n") >= 0 ? m.indexOf("\n\n") : m.indexOf("\r\n\r\n"))
    .replace(/=\r?\n/g, "")
    .replace(/=([0-9A-F]{2})/g, (_x, h: string) => String.fromCharCode(parseInt(h, 16)));

let internet: LocalInternet;
let dnsHost: NetHost, mx: NetHost, peerHost: NetHost;
let knot: KnotServer;
let tlsFiles: TestTls;
let peer: PostfixPeer;
let maild: MaildProcess;
let dataDir: string;
let hookServer: https.Server;
const hooks: { event: string; alert?: { id: string } }[] = [];
let browser: Browser | undefined;

/** An HTTPS request to maild's web listener (the test CA trusted), keeping the status session cookie. */
let cookie = "";
function web(
  method: string,
  urlPath: string,
  body?: string,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: mx.ipv4,
        port: 443,
        method,
        path: urlPath,
        servername: "mx.example.org",
        ca: tlsFiles.caPem,
        headers: {
          host: "mx.example.org",
          ...(cookie ? { cookie } : {}),
          ...(body !== undefined ? { "content-type": "application/x-www-form-urlencoded", origin: "https://mx.example.org" } : {}),
        },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8").on("data", (d: string) => (text += d));
        res.on("end", () => {
          const set = res.headers["set-cookie"]?.[0];
          if (set) cookie = set.split(";")[0];
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text });
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

before(async () => {
  internet = await LocalInternet.create();
  dnsHost = await internet.addHost("dns");
  mx = await internet.addHost("mx");
  peerHost = await internet.addHost("peer");
  tlsFiles = await makeTestTls(path.join(internet.workDir, "tls"), ["mx.example.org", "mail.peer.test", "hooks.peer.test"], "mx");
  fs.chownSync(tlsFiles.keyPath, MAIL_UID, MAIL_UID);

  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const peerDkim = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const keyDir = path.join(internet.workDir, "dkim");
  fs.mkdirSync(keyDir, { mode: 0o700 });
  const rsaPath = path.join(keyDir, "g1-rsa.pem");
  fs.writeFileSync(rsaPath, rsa.privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
  for (const p of [keyDir, rsaPath]) fs.chownSync(p, MAIL_UID, MAIL_UID);
  const spki = (k: typeof rsa) => k.publicKey.export({ type: "spki", format: "der" }).toString("base64");

  knot = await startKnot(internet, dnsHost, [
    {
      origin: "example.org.",
      lines: [
        `example.org. MX 10 mx.example.org.`,
        `mx.example.org. A ${mx.ipv4}`,
        `mx.example.org. AAAA ${mx.ipv6}`,
        `example.org. TXT "v=spf1 ip4:${mx.ipv4} ip6:${mx.ipv6} -all"`,
        `g1-rsa._domainkey.example.org. TXT ${txtContent(`v=DKIM1; k=rsa; p=${spki(rsa)}`)}`,
        `_dmarc.example.org. TXT "v=DMARC1; p=reject; rua=mailto:postmaster@example.org"`,
        `_smtp._tls.example.org. TXT "v=TLSRPTv1; rua=mailto:postmaster@example.org"`,
      ],
    },
    {
      origin: "peer.test.",
      lines: [
        `peer.test. MX 10 mail.peer.test.`,
        `mail.peer.test. A ${peerHost.ipv4}`,
        `mail.peer.test. AAAA ${peerHost.ipv6}`,
        `hooks.peer.test. A ${internet.localIpv4}`,
        `peer.test. TXT "v=spf1 ip4:${peerHost.ipv4} ip6:${peerHost.ipv6} -all"`,
        `s1._domainkey.peer.test. TXT ${txtContent(`v=DKIM1; k=rsa; p=${spki(peerDkim)}`)}`,
        `_dmarc.peer.test. TXT "v=DMARC1; p=none; rua=mailto:dmarc@peer.test"`,
        `_smtp._tls.peer.test. TXT "v=TLSRPTv1; rua=mailto:tlsrpt@peer.test"`,
      ],
    },
    // A DNSBL of our own (RFC 5782): its test entry, and the box's IPv4 address listed.
    {
      origin: "bl.test.",
      lines: [
        `${blocklistQueryName("127.0.0.2", "bl.test")}. A 127.0.0.2`,
        `${blocklistQueryName(mx.ipv4, "bl.test")}. A 127.0.0.2`,
        `${blocklistQueryName(mx.ipv4, "bl.test")}. TXT "Listed by the test blocklist; see https://bl.test/lookup"`,
      ],
    },
    { origin: "dbl.test.", lines: [`test.dbl.test. A 127.0.1.2`] },
  ]);
  await internet.setResolver(dnsHost.ipv4);

  hookServer = https.createServer({ cert: fs.readFileSync(tlsFiles.certPath), key: fs.readFileSync(tlsFiles.keyPath) }, (req, res) => {
    let body = "";
    req.setEncoding("utf8").on("data", (d: string) => (body += d));
    req.on("end", () => {
      hooks.push(JSON.parse(body));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => hookServer.listen(8443, internet.localIpv4, r));

  peer = await startPostfix(internet, peerHost, {
    myhostname: "mail.peer.test",
    mydomain: "peer.test",
    receive: { domains: ["peer.test"] },
    smtpdTls: { certPem: fs.readFileSync(tlsFiles.certPath, "utf8"), keyPem: fs.readFileSync(tlsFiles.keyPath, "utf8") },
    dkim: { domain: "peer.test", selector: "s1", privateKeyPem: peerDkim.privateKey.export({ type: "pkcs8", format: "pem" }).toString() },
    trustCaPem: tlsFiles.caPem,
  });

  dataDir = path.join(internet.workDir, "data");
  fs.mkdirSync(dataDir, { mode: 0o700 });
  fs.chownSync(dataDir, MAIL_UID, MAIL_UID);
  const caPath = path.join(internet.workDir, "ca.pem");
  fs.writeFileSync(caPath, tlsFiles.caPem);
  // Today's digest counts as sent, so the tests see only the digests they ask for.
  await writeState(dataDir, { version: 1, active: [], lastDigest: new Date().toISOString().slice(0, 10) });
  for (const p of [path.dirname(statePath(dataDir)), statePath(dataDir)]) fs.chownSync(p, MAIL_UID, MAIL_UID);
  maild = await startMaild(
    internet,
    mx,
    maildConfig(
      mx,
      { dataDir, tls: tlsFiles },
      {
        domains: [{ name: "example.org", dkim: [{ selector: "g1-rsa", algorithm: "rsa", keyPath: rsaPath }] }],
        users: [{ address: "alice@example.org", passwordHash: argon2idHash(ALICE_PASSWORD) }],
        aliases: [{ address: "postmaster@example.org", to: ["alice@example.org"] }],
        dnsServers: [dnsHost.ipv4],
        listen: {
          smtp: [
            { host: mx.ipv4, port: 25 },
            { host: mx.ipv6, port: 25 },
          ],
          submission: [{ host: mx.ipv4, port: 587 }],
          submissions: [],
          http: [],
          https: [{ host: mx.ipv4, port: 443 }],
        },
        outbound: { extraCaPath: caPath, retryBaseSeconds: 1, retryMaxSeconds: 2, timeoutMs: 10_000 },
        operations: {
          addresses: [mx.ipv4, mx.ipv6],
          ipBlocklists: ["bl.test"],
          domainBlocklists: ["dbl.test"],
          blocklistIntervalSeconds: 1,
          checkIntervalSeconds: 1,
          reportAddresses: ["postmaster@example.org"],
          alertTo: ["postmaster@example.org"],
          webhook: "https://hooks.peer.test:8443/maild",
          admins: ["alice@example.org"],
          digestTime: "00:00",
        },
      },
    ),
    { user: { uid: MAIL_UID, gid: MAIL_UID } },
  );
});

after(async () => {
  await browser?.close();
  await maild?.stop();
  await peer?.stop();
  await new Promise<void>((r) => (hookServer ? hookServer.close(() => r()) : r()));
  await internet?.destroy();
});

const alertMails = (kind: "ALERT" | "cleared") =>
  maildir(dataDir, "alice").filter(
    (m) => subjectOf(m) === `[mx.example.org] ${kind === "ALERT" ? "ALERT" : "cleared"}: ${mx.ipv4} is listed on bl.test`,
  );

async function login(): Promise<void> {
  const r = await web("POST", "/status/login", `address=alice%40example.org&password=${encodeURIComponent(ALICE_PASSWORD)}`);
  assert.equal(r.status, 303, r.body);
}

async function digest(): Promise<string> {
  const digests = () => maildir(dataDir, "alice").filter((m) => subjectOf(m).includes("daily status"));
  const before = new Set(digests());
  const r = await web("POST", "/status/actions/digest", "");
  assert.equal(r.status, 303, r.body);
  // Maildir names within one second do not sort by time: the new digest is the one not seen before
  const fresh = await until("the digest in the postmaster's mailbox", 20_000, () => digests().find((m) => !before.has(m)));
  return textOf(fresh);
}

describe("operations in the local internet", () => {
  test("a blocklist listing raises one alert (mail and webhook), shows in mailstack check and in the digest with its delisting link", async () => {
    await until("the alert mail", 20_000, () => alertMails("ALERT").length === 1);
    await until("the alert webhook", 10_000, () => hooks.some((h) => h.event === "alert.fired"));
    // several check rounds later, still exactly one of each
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(alertMails("ALERT").length, 1);
    assert.deepEqual(
      hooks.filter((h) => h.event === "alert.fired").map((h) => h.alert?.id),
      [`blocklist:bl.test:${mx.ipv4}`],
    );
    assert.match(
      textOf(alertMails("ALERT")[0]),
      /Listed by the test blocklist; see https:\/\/bl\.test\/lookup \(127\.0\.0\.2\); look up and request removal: https:\/\/multirbl\.valli\.org\/lookup\//,
    );

    const out: string[] = [];
    const project = fs.mkdtempSync(path.join(internet.workDir, "project-"));
    const code = await runCheck(
      [
        "example.org",
        "--json",
        "--resolver",
        dnsHost.ipv4,
        "--timeout",
        "1500",
        "--project",
        project,
        "--dnsbl",
        "bl.test",
        "--dbl",
        "dbl.test",
        "--ca",
        path.join(internet.workDir, "ca.pem"),
      ],
      { findProjectDir: () => project, stdout: (t) => void out.push(t), stderr: () => undefined },
    );
    assert.equal(code, 1);
    const rows = (JSON.parse(out.join("")) as { checks: { check: string; status: string; detail: string }[] }).checks.filter((r) =>
      r.check.startsWith("blocklist"),
    );
    assert.deepEqual(
      rows.map((r) => [r.check, r.status]),
      [
        ["blocklist.bl.test.ipv4", "fail"],
        ["blocklist.bl.test.ipv6", "pass"],
        ["blocklist.dbl.test.example.org", "pass"],
        ["blocklist.dbl.test.mx.example.org", "pass"],
      ],
    );
    assert.match(rows[0].detail, /Listed by the test blocklist/);

    await login();
    const text = await digest();
    assert.match(
      text,
      new RegExp(
        `LISTED ${mx.ipv4.replace(/\./g, "\\.")} on bl\\.test: Listed by the test blocklist; see https://bl\\.test/lookup -> https://multirbl\\.valli\\.org/lookup/`,
      ),
    );
    assert.match(text, /\[critical\] 198\.51\.100\.\d+ is listed on bl\.test/);
  });

  test("a DMARC aggregate report and a TLSRPT report mailed to the rua are read on delivery and summarised in the digest", async () => {
    const begin = Math.floor(Date.now() / 86_400_000) * 86_400 - 86_400;
    const xml = dmarcAggregateXml({
      domain: "example.org",
      reportId: `dmarc-${randomBytes(3).toString("hex")}`,
      orgName: "peer.test",
      begin,
      records: [
        { sourceIp: mx.ipv4, count: 7, dkim: "pass", spf: "pass", headerFrom: "example.org" },
        { sourceIp: "203.0.113.66", count: 4, dkim: "fail", spf: "fail", headerFrom: "example.org" },
      ],
    });
    await peer.sendmail(
      "dmarc@peer.test",
      ["postmaster@example.org"],
      reportMessage({
        from: "dmarc@peer.test",
        to: "postmaster@example.org",
        subject: "Report Domain: example.org Submitter: peer.test",
        attachment: gzipSync(xml),
        contentType: "application/gzip",
        filename: `peer.test!example.org!${begin}!${begin + 86399}.xml.gz`,
      }),
    );
    const tls = tlsrptJson({
      domain: "example.org",
      mx: "mx.example.org",
      reportId: `tls-${randomBytes(3).toString("hex")}`,
      begin: new Date(begin * 1000),
      successful: 25,
      failures: [{ resultType: "certificate-expired", count: 3, receivingIp: mx.ipv4 }],
    });
    await peer.sendmail(
      "tlsrpt@peer.test",
      ["postmaster@example.org"],
      reportMessage({
        from: "tlsrpt@peer.test",
        to: "postmaster@example.org",
        subject: "Report Domain: example.org Submitter: peer.test",
        attachment: gzipSync(tls),
        contentType: "application/tlsrpt+gzip",
        filename: `peer.test!example.org!${begin}!${begin + 86399}.json.gz`,
        tlsrpt: true,
      }),
    );
    await until(
      "both reports read",
      30_000,
      () => maild.logs().filter((l) => l.event === "report.received" && l.result === "stored").length === 2,
    );

    const text = await digest();
    assert.match(text, /1 report\(s\), 11 message\(s\): 7 passed, 4 failed DMARC/);
    assert.match(text, /203\.0\.113\.66 for example\.org, reported by peer\.test: 4 message\(s\), 4 failed; aligned SPF 0, aligned DKIM 0/);
    assert.match(
      text,
      new RegExp(
        `${mx.ipv4.replace(/\./g, "\\.")} \\(this server\\) for example\\.org, reported by peer\\.test: 7 message\\(s\\), 0 failed`,
      ),
    );
    assert.match(text, /example\.org \(sts\), reported by Peer Test Inc\.: 25 ok, 3 failed \(certificate-expired 3\)/);
    // both messages are in the postmaster's mailbox as well
    assert.equal(maildir(dataDir, "alice").filter((m) => subjectOf(m) === "Report Domain: example.org Submitter: peer.test").length, 2);
  });

  test("our TLSRPT and DMARC reports reach the peer's rua DKIM-signed; opendkim, dkimverify and Python's parsers accept them", async () => {
    // one more message from the peer's domain, judged by DMARC on arrival like the two reports before it
    await peer.sendmail(
      "carl@peer.test",
      ["alice@example.org"],
      "From: carl@peer.test\r\nTo: alice@example.org\r\nSubject: from carl\r\n\r\nhello\r\n",
    );
    await until("carl's message at alice", 30_000, () => maildir(dataDir, "alice").some((m) => subjectOf(m) === "from carl"));
    // one outbound TLS session to peer.test, counted for today's report
    const conn = new SMTPConnection({
      host: mx.ipv4,
      port: 587,
      requireTLS: true,
      servername: "mx.example.org",
      tls: { ca: tlsFiles.caPem },
    });
    await new Promise<void>((res, rej) => (conn.once("error", rej), conn.connect(() => res())));
    await new Promise<void>((res, rej) => conn.login({ user: "alice@example.org", pass: ALICE_PASSWORD }, (e) => (e ? rej(e) : res())));
    await new Promise<void>((res, rej) =>
      conn.send(
        { from: "alice@example.org", to: ["carol@peer.test"] },
        "From: alice@example.org\r\nTo: carol@peer.test\r\nSubject: hello\r\n\r\nhi\r\n",
        (e) => (e ? rej(e) : res()),
      ),
    );
    conn.quit();
    await until("the message at the peer", 30_000, () => peer.received().some((m) => /^Subject: hello$/m.test(m)));
    const today = new Date().toISOString().slice(0, 10);
    const r = await web("POST", `/status/actions/reports?day=${today}`, "");
    assert.equal(r.status, 303, r.body);
    const report = await until("our TLS report at the peer", 30_000, () =>
      peer.received().find((m) => /^TLS-Report-Domain: peer\.test$/m.test(m)),
    );
    assert.match(report, /^Subject: Report Domain: peer\.test Submitter: mx\.example\.org Report-ID: <.*_peer\.test>$/m);
    assert.match(report, /Content-Type: multipart\/report; report-type="tlsrpt"/);
    // opendkim's comment "(2048-bit key; unprotected)" holds a semicolon
    assert.match(report, /dkim=pass(?: \([^)]*\))? header\.d=example\.org/, "the peer's opendkim verified our signature");
    const signed = report.slice(report.indexOf("DKIM-Signature:"));
    const verify = await peerHost.run(["/usr/bin/dkimverify"], { input: signed.replace(/\r?\n/g, "\r\n") });
    assert.equal(verify.stdout.trim(), "signature ok", verify.stdout + verify.stderr);
    const parsed = await peerHost.run(
      [
        "/usr/bin/python3",
        "-c",
        [
          "import sys, email, gzip, json",
          "m = email.message_from_string(sys.stdin.read())",
          "part = [p for p in m.walk() if p.get_content_type() == 'application/tlsrpt+gzip'][0]",
          "doc = json.loads(gzip.decompress(part.get_payload(decode=True)))",
          "p = doc['policies'][0]",
          "print(doc['organization-name'], doc['date-range']['start-datetime'], p['policy']['policy-domain'], p['policy']['policy-type'], p['summary']['total-successful-session-count'], p['summary']['total-failure-session-count'])",
        ].join("\n"),
      ],
      { input: report },
    );
    assert.equal(parsed.stdout.trim(), `mx.example.org ${today}T00:00:00Z peer.test no-policy-found 1 0`, parsed.stderr);

    const dmarc = await until("our DMARC report at the peer", 30_000, () =>
      peer
        .received()
        .find((m) =>
          m.includes(`Subject: Report Domain: peer.test Submitter: mx.example.org Report-ID: <${today}.peer.test@mx.example.org>`),
        ),
    );
    assert.match(dmarc, /dkim=pass(?: \([^)]*\))? header\.d=example\.org/, "the peer's opendkim verified our signature");
    const dmarcVerify = await peerHost.run(["/usr/bin/dkimverify"], {
      input: dmarc.slice(dmarc.indexOf("DKIM-Signature:")).replace(/\r?\n/g, "\r\n"),
    });
    assert.equal(dmarcVerify.stdout.trim(), "signature ok", dmarcVerify.stdout + dmarcVerify.stderr);
    // Python's xml.etree: the report as any receiver's tooling reads it
    const xml = await peerHost.run(
      [
        "/usr/bin/python3",
        "-c",
        [
          "import sys, email, gzip",
          "import xml.etree.ElementTree as ET",
          "m = email.message_from_string(sys.stdin.read())",
          "part = [p for p in m.walk() if p.get_content_type() == 'application/gzip'][0]",
          "root = ET.fromstring(gzip.decompress(part.get_payload(decode=True)))",
          "print(part.get_filename())",
          "print(root.findtext('report_metadata/org_name'), root.findtext('policy_published/domain'), root.findtext('policy_published/p'))",
          "for r in root.findall('record'):",
          "    print(r.findtext('row/source_ip'), r.findtext('row/count'), r.findtext('row/policy_evaluated/dkim'), r.findtext('row/policy_evaluated/spf'), r.findtext('identifiers/header_from'), r.findtext('auth_results/dkim/domain'), r.findtext('auth_results/dkim/result'), r.findtext('auth_results/spf/result'))",
        ].join("\n"),
      ],
      { input: dmarc },
    );
    const begin = Date.parse(`${today}T00:00:00Z`) / 1000;
    const [filename, meta, ...rows] = xml.stdout.trim().split("\n");
    assert.equal(filename, `mx.example.org!peer.test!${begin}!${begin + 86399}.xml.gz`, xml.stderr);
    assert.equal(meta, "mx.example.org peer.test none");
    // the two reports of the test before and carl's message: all from the peer (over IPv4 or IPv6,
    // as its Postfix chose), all passing
    const counted = rows.map((r) => r.split(" "));
    for (const [ip, , ...verdicts] of counted) {
      assert.ok([peerHost.ipv4, peerHost.ipv6].includes(ip), `source ${ip} is the peer`);
      assert.deepEqual(verdicts, ["pass", "pass", "peer.test", "peer.test", "pass", "pass"]);
    }
    assert.equal(
      counted.reduce((n, r) => n + Number(r[1]), 0),
      3,
    );
  });

  test("the status page in Chromium: login, both charts drawn with their series, the blocklist hit listed", async () => {
    browser = await chromium.launch(chromiumLaunchOptions([`--host-resolver-rules=MAP mx.example.org ${mx.ipv4}`]));
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1200, height: 1600 } });
    const page = await context.newPage();
    await page.goto("https://mx.example.org/status");
    await page.getByLabel("Address").fill("alice@example.org");
    await page.getByLabel("Password").fill(ALICE_PASSWORD);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.waitForSelector('#dmarc-chart[data-rendered="chart"]');
    await page.waitForSelector('#tls-chart[data-rendered="chart"]');

    // The page's content, as a person (and a screen reader) sees it: the blocklist row and the report rows.
    const blocklists = await page.locator("section", { has: page.locator("#blocklists") }).ariaSnapshot();
    assert.match(
      blocklists,
      new RegExp(
        `row "${mx.ipv4.replace(/\./g, "\\.")} bl\\.test listed Listed by the test blocklist; see https://bl\\.test/lookup look up / request removal"`,
      ),
      blocklists,
    );
    const dmarc = await page.locator("section", { has: page.locator("#dmarc") }).ariaSnapshot();
    assert.match(dmarc, /row "203\.0\.113\.66 example\.org peer\.test 4 4 0 0"/, dmarc);

    // The screenshot, compared by what is drawn: each chart's canvas holds its series' colours.
    const shot = path.join(internet.workDir, "status-page.png");
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(fs.statSync(shot).size > 10_000);
    // Runs in the page (a string: the project's TypeScript has no DOM types).
    const drawn = (await page.evaluate(`(() => {
      const colours = ${JSON.stringify(CHART_COLOURS)};
      const hex = (c) => [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16));
      const count = (id, colour) => {
        const canvas = document.querySelector("#" + id + " canvas");
        const [r, g, b] = hex(colour);
        const px = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        let n = 0;
        for (let i = 0; i < px.length; i += 4) if (Math.abs(px[i] - r) < 8 && Math.abs(px[i + 1] - g) < 8 && Math.abs(px[i + 2] - b) < 8 && px[i + 3] > 200) n++;
        return n;
      };
      return {
        pass: count("dmarc-chart", colours.pass),
        fail: count("dmarc-chart", colours.fail),
        tlsOk: count("tls-chart", colours.tlsOk),
        tlsFail: count("tls-chart", colours.tlsFail),
        title: document.querySelector("#dmarc-chart .u-title")?.textContent,
      };
    })()`)) as Record<string, number | string>;
    assert.equal(drawn.title, "DMARC results reported (messages per day)");
    for (const [series, pixels] of Object.entries(drawn))
      if (series !== "title") assert.ok((pixels as number) > 20, `${series} drawn: ${JSON.stringify(drawn)}`);
    await context.close();
  });

  test("after delisting, the alert clears once (mail and webhook)", async () => {
    await knot.removeRecords("bl.test.", `${blocklistQueryName(mx.ipv4, "bl.test")}.`, "A");
    await until("the cleared mail", 20_000, () => alertMails("cleared").length === 1);
    await until("the cleared webhook", 10_000, () => hooks.some((h) => h.event === "alert.cleared"));
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(alertMails("cleared").length, 1);
    assert.equal(alertMails("ALERT").length, 1);
    assert.equal(hooks.filter((h) => h.event === "alert.cleared" && h.alert?.id === `blocklist:bl.test:${mx.ipv4}`).length, 1);
    const metrics = maild.logs().filter((l) => l.event === "alert.cleared");
    assert.equal(metrics.length, 1);
  });
});
