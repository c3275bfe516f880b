// The SMTP transport against real peers in the local internet. knot serves the peer domains'
// MX, A/AAAA and _mta-sts TXT records; Node smtp-server peers (in their own namespaces) receive,
// one with a certificate from a CA we trust, one with a certificate we do not trust; an HTTPS
// server serves the MTA-STS policies. The transport runs in the test process and reaches every
// namespace host through the root leg of the bridge.
//
// DANE: a second knot serves a zone signed with dnssec-signzone, and unbound validates it with a
// trust anchor for that zone; the transport asks unbound, so the AD bit is real.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { createHash, X509Certificate } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { LocalInternet, mustRun, type NetHost } from "../../infra/local-internet/netns";
import { startKnot } from "../../infra/local-internet/knot";
import { makeTestTls, type TestTls } from "../../infra/local-internet/test-tls";
import { waitForPort } from "../../infra/local-internet/wait-for-port";
import { validateMaildConfig, type MaildConfig } from "../../server-bootstrap/maild/config";
import { createLogger } from "../../server-bootstrap/maild/log";
import { SmtpTransport } from "../../server-bootstrap/maild/outbound/transport";
import { TlsReport, type TlsPolicyReport } from "../../server-bootstrap/maild/outbound/tls-report";
import type { DeliveryAttempt, RecipientResult } from "../../server-bootstrap/maild/outbound/types";

const REPO = path.resolve(__dirname, "../..");
const NODE = path.join(REPO, "node_modules/.bin/node");

/**
 * The peer: smtp-server on the given addresses (port 25) and, optionally, an HTTPS server for
 * MTA-STS policies on port 443. Every SMTP event is appended to a JSON-lines file.
 */
const PEER_SCRIPT = `
const fs = require("node:fs");
const https = require("node:https");
const tls = require("node:tls");
const { SMTPServer } = require(${JSON.stringify(require.resolve("smtp-server"))});
const cfg = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const log = (e) => fs.appendFileSync(cfg.events, JSON.stringify({ ...e, at: Date.now() }) + "\\n");
for (const host of cfg.smtp || []) {
  const server = new SMTPServer({
    name: cfg.name, key: fs.readFileSync(cfg.keyPath), cert: fs.readFileSync(cfg.certPath),
    disabledCommands: ["AUTH"], logger: false, size: 10 * 1024 * 1024,
    onConnect(session, cb) { log({ event: "connect", id: session.id, remote: session.remoteAddress }); cb(); },
    onClose(session) { log({ event: "close", id: session.id }); },
    onSecure(socket, session, cb) { log({ event: "secure", id: session.id, servername: session.servername }); cb(); },
    onMailFrom(address, session, cb) { log({ event: "mail", id: session.id, from: address.address }); cb(); },
    onRcptTo(address, session, cb) {
      const refusal = (cfg.refuse || {})[address.address];
      if (refusal) {
        log({ event: "rcpt-refused", id: session.id, to: address.address });
        return cb(Object.assign(new Error(refusal), { responseCode: 550 }));
      }
      log({ event: "rcpt", id: session.id, to: address.address });
      cb();
    },
    onData(stream, session, cb) {
      const chunks = [];
      stream.on("data", (c) => chunks.push(c));
      stream.on("end", () => {
        const body = Buffer.concat(chunks).toString("latin1");
        log({ event: "data", id: session.id, remote: session.remoteAddress, secure: session.secure,
          from: session.envelope.mailFrom && session.envelope.mailFrom.address,
          to: session.envelope.rcptTo.map((r) => r.address), body });
        cb(null, "Message queued as " + session.id);
      });
    },
  });
  server.on("error", (err) => log({ event: "error", message: err.message }));
  server.listen(25, host);
}
if (cfg.https) {
  const contexts = {};
  for (const [name, c] of Object.entries(cfg.https.certs)) contexts[name] = tls.createSecureContext({ cert: fs.readFileSync(c.certPath), key: fs.readFileSync(c.keyPath) });
  const server = https.createServer({ SNICallback: (name, cb) => cb(null, contexts[name] || contexts.default) }, (req, res) => {
    const policy = cfg.https.policies[(req.headers.host || "").replace(/:\\d+$/, "")];
    if (!policy || req.url !== "/.well-known/mta-sts.txt") return res.writeHead(404).end();
    res.writeHead(200, { "content-type": "text/plain" }).end(policy);
  });
  for (const host of cfg.https.hosts) server.listen(443, host);
}
`;

interface PeerEvent {
  event: string;
  id?: string;
  remote?: string;
  secure?: boolean;
  servername?: string;
  from?: string;
  to?: string[] | string;
  body?: string;
}

interface Peer {
  host: NetHost;
  events(): PeerEvent[];
}

let internet: LocalInternet;
let dataDir: string;
let trusted: TestTls;
let web: TestTls;
let untrusted: TestTls;
let webUntrusted: TestTls;
let extraCaPath: string;
let messagePath: string;
const peers: Record<string, Peer> = {};
const logLines: string[] = [];

async function startPeer(
  host: NetHost,
  opts: { smtp?: string[]; tls: TestTls; refuse?: Record<string, string>; https?: unknown },
): Promise<Peer> {
  const dir = path.join(internet.workDir, `peer-${host.name}`);
  fs.mkdirSync(dir, { recursive: true });
  const events = path.join(dir, "events.jsonl");
  fs.writeFileSync(events, "");
  const script = path.join(internet.workDir, "peer.js");
  if (!fs.existsSync(script)) fs.writeFileSync(script, PEER_SCRIPT);
  const configPath = path.join(dir, "peer.json");
  fs.writeFileSync(
    configPath,
    JSON.stringify({
      name: `mx.${host.name}.test`,
      events,
      certPath: opts.tls.certPath,
      keyPath: opts.tls.keyPath,
      smtp: opts.smtp ?? [],
      refuse: opts.refuse ?? {},
      https: opts.https,
    }),
  );
  const child = host.spawn([NODE, script, configPath], { logFile: path.join(dir, "stdout.log") });
  const alive = () => child.exitCode === null && child.signalCode === null;
  for (const ip of opts.smtp ?? []) await waitForPort(ip, 25, `peer ${host.name}`, 10_000, alive);
  return {
    host,
    events: () =>
      fs
        .readFileSync(events, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as PeerEvent),
  };
}

function config(overrides: Partial<MaildConfig["outbound"]> = {}, dnsServer?: string): MaildConfig {
  return validateMaildConfig({
    hostname: "mail.sender.test",
    dataDir,
    tls: { certPath: "/nonexistent/cert.pem", keyPath: "/nonexistent/key.pem" },
    domains: [{ name: "sender.test" }],
    users: [],
    aliases: [],
    dnsServers: [dnsServer ?? internet.allHosts.find((h) => h.name === "dns")!.ipv4],
    outbound: { port: 25, timeoutMs: 5000, extraCaPath, ...overrides },
  });
}

let report: TlsReport;
let transport: SmtpTransport;
let attempts = 0;

function attempt(domain: string, recipients: string[]): DeliveryAttempt {
  attempts++;
  return { id: `t${attempts}`, domain, sender: "ann@sender.test", recipients, messagePath, size: fs.statSync(messagePath).size };
}

// The report's clock is fixed, so a run across midnight UTC counts into one day.
const DAY = "2025-06-01";

async function policiesFor(domain: string): Promise<TlsPolicyReport[]> {
  const day = await report.readDay(DAY);
  return (day?.policies ?? []).filter((p) => p.policy["policy-domain"] === domain);
}

function dataFor(peer: Peer, rcpt: string): PeerEvent[] {
  return peer.events().filter((e) => e.event === "data" && Array.isArray(e.to) && e.to.includes(rcpt));
}

before(async () => {
  internet = await LocalInternet.create();
  const dns = await internet.addHost("dns");
  const mx1 = await internet.addHost("mx1");
  const mx4 = await internet.addHost("mx4");
  const bad = await internet.addHost("bad");
  const down = await internet.addHost("down");
  const www = await internet.addHost("www");

  const tlsDir = path.join(internet.workDir, "tls");
  trusted = await makeTestTls(
    tlsDir,
    [
      "mx.v6.test",
      "mx.fallback.test",
      "implicit.test",
      "mx.reject.test",
      "mx.sts-good.test",
      "mx.sts-webpki.test",
      "mx.dane.test",
      "mx.wrong.dane.test",
    ],
    "trusted",
  );
  web = await makeTestTls(tlsDir, ["mta-sts.sts-good.test", "mta-sts.sts-bad.test", "mta-sts.sts-testing.test"], "web");
  untrusted = await makeTestTls(tlsDir, ["mx.sts-bad.test", "mx.sts-testing.test", "mx.ee.dane.test"], "untrusted");
  webUntrusted = await makeTestTls(tlsDir, ["mta-sts.sts-webpki.test"], "web-untrusted");
  extraCaPath = path.join(tlsDir, "extra-ca.pem");
  fs.writeFileSync(extraCaPath, trusted.caPem + web.caPem);

  const sts = (name: string, host: NetHost) => [
    `${name}. MX 10 mx.${name}.`,
    `mx.${name}. A ${host.ipv4}`,
    `_mta-sts.${name}. TXT "v=STSv1; id=20250101"`,
    `mta-sts.${name}. A ${www.ipv4}`,
  ];
  await startKnot(internet, dns, [
    {
      origin: "test.",
      lines: [
        `v6.test. MX 10 mx.v6.test.`,
        `mx.v6.test. A ${mx1.ipv4}`,
        `mx.v6.test. AAAA ${mx1.ipv6}`,
        // the IPv6 address of this MX has no listener: connection refused, then IPv4
        `fallback.test. MX 10 mx.fallback.test.`,
        `mx.fallback.test. A ${mx4.ipv4}`,
        `mx.fallback.test. AAAA ${mx4.ipv6}`,
        `implicit.test. A ${mx1.ipv4}`,
        `nullmx.test. MX 0 .`,
        `nullmx.test. A ${mx1.ipv4}`,
        `reject.test. MX 10 mx.reject.test.`,
        `mx.reject.test. A ${mx1.ipv4}`,
        `down.test. MX 10 mx.down.test.`,
        `mx.down.test. A ${down.ipv4}`,
        `mx.down.test. AAAA ${down.ipv6}`,
        ...sts("sts-good.test", mx1),
        ...sts("sts-bad.test", bad),
        ...sts("sts-testing.test", bad),
        ...sts("sts-webpki.test", mx1),
        `mta-sts.sts-webpki.test. A ${www.ipv4}`,
      ],
    },
  ]);

  const policy = (mode: string, mx: string) => `version: STSv1\r\nmode: ${mode}\r\nmx: ${mx}\r\nmax_age: 86400\r\n`;
  peers.mx1 = await startPeer(mx1, {
    smtp: [mx1.ipv4, mx1.ipv6],
    tls: trusted,
    refuse: { "nobody@reject.test": "5.1.1 <nobody@reject.test>: no such user" },
  });
  peers.mx4 = await startPeer(mx4, { smtp: [mx4.ipv4], tls: trusted });
  peers.bad = await startPeer(bad, { smtp: [bad.ipv4], tls: untrusted });
  peers.www = await startPeer(www, {
    tls: web,
    https: {
      hosts: [www.ipv4],
      certs: { default: web, "mta-sts.sts-webpki.test": webUntrusted },
      policies: {
        "mta-sts.sts-good.test": policy("enforce", "mx.sts-good.test"),
        "mta-sts.sts-bad.test": policy("enforce", "mx.sts-bad.test"),
        "mta-sts.sts-testing.test": policy("testing", "mx.sts-testing.test"),
        "mta-sts.sts-webpki.test": policy("enforce", "mx.sts-webpki.test"),
      },
    },
  });
  await waitForPort(www.ipv4, 443, "policy server");

  dataDir = path.join(internet.workDir, "data");
  fs.mkdirSync(dataDir);
  messagePath = path.join(dataDir, "message.eml");
  fs.writeFileSync(
    messagePath,
    "From: Ann <ann@sender.test>\r\nTo: someone\r\nSubject: outbound transport test\r\nMessage-ID: <t@sender.test>\r\n\r\nHello.\r\n.leading dot\r\n",
  );
  report = new TlsReport({ dataDir: () => dataDir, now: () => new Date(`${DAY}T12:00:00Z`) });
  const cfg = config();
  transport = new SmtpTransport({ config: () => cfg, log: createLogger((l) => logLines.push(l)), tlsReport: report });
});

after(async () => {
  await transport?.close();
  await internet?.destroy();
});

function only(results: RecipientResult[]): RecipientResult {
  assert.equal(results.length, 1, JSON.stringify(results));
  return results[0];
}

describe("outbound SMTP transport in the local internet", () => {
  test("delivers over STARTTLS to the MX's IPv6 address first, streaming the message unchanged", async () => {
    const r = only(await transport.deliver(attempt("v6.test", ["alice@v6.test"])));
    assert.equal(r.status, "delivered", r.diagnostic);
    assert.equal(r.remoteMta, "mx.v6.test");
    assert.equal(r.remoteReply, true);
    assert.match(r.diagnostic, /^250 .*Message queued as /);
    const [data] = dataFor(peers.mx1, "alice@v6.test");
    assert.equal(data.remote, internet.localIpv6);
    assert.equal(data.secure, true);
    assert.equal(data.from, "ann@sender.test");
    assert.equal(data.body, fs.readFileSync(messagePath, "latin1"));
    const secure = peers.mx1.events().find((e) => e.event === "secure" && e.id === data.id);
    assert.equal(secure?.servername, "mx.v6.test");
    const [p] = await policiesFor("v6.test");
    assert.equal(p.policy["policy-type"], "no-policy-found");
    assert.equal(p.summary["total-successful-session-count"], 1);
  });

  test("falls back to IPv4 when the IPv6 address refuses the connection", async () => {
    const r = only(await transport.deliver(attempt("fallback.test", ["bob@fallback.test"])));
    assert.equal(r.status, "delivered", r.diagnostic);
    const [data] = dataFor(peers.mx4, "bob@fallback.test");
    assert.equal(data.remote, internet.localIpv4);
  });

  test("a domain without MX records gets its mail at its own address (implicit MX)", async () => {
    const r = only(await transport.deliver(attempt("implicit.test", ["carol@implicit.test"])));
    assert.equal(r.status, "delivered", r.diagnostic);
    assert.equal(r.remoteMta, "implicit.test");
    assert.equal(dataFor(peers.mx1, "carol@implicit.test").length, 1);
  });

  test("a null MX fails at once with 5.1.10, without a connection", async () => {
    const before = peers.mx1.events().length;
    assert.deepEqual(only(await transport.deliver(attempt("nullmx.test", ["dave@nullmx.test"]))), {
      recipient: "dave@nullmx.test",
      status: "failed",
      enhancedCode: "5.1.10",
      diagnostic: "domain nullmx.test does not accept mail (null MX, RFC 7505)",
      remoteReply: false,
    });
    assert.deepEqual(
      peers.mx1
        .events()
        .slice(before)
        .filter((e) => e.event === "connect"),
      [],
    );
  });

  test("a domain that does not exist fails with 5.1.2", async () => {
    const r = only(await transport.deliver(attempt("nonexistent.test", ["x@nonexistent.test"])));
    assert.deepEqual([r.status, r.enhancedCode], ["failed", "5.1.2"]);
  });

  test("a recipient refused with 550 fails with the server's reply; the other recipient is delivered", async () => {
    const results = await transport.deliver(attempt("reject.test", ["good@reject.test", "nobody@reject.test"]));
    const byRcpt = Object.fromEntries(results.map((r) => [r.recipient, r]));
    assert.equal(byRcpt["good@reject.test"].status, "delivered");
    assert.deepEqual(byRcpt["nobody@reject.test"], {
      recipient: "nobody@reject.test",
      status: "failed",
      enhancedCode: "5.1.1",
      diagnostic: "550 5.1.1 <nobody@reject.test>: no such user",
      remoteReply: true,
      remoteMta: "mx.reject.test",
    });
    const [data] = dataFor(peers.mx1, "good@reject.test");
    assert.deepEqual(data.to, ["good@reject.test"]);
  });

  test("when every recipient is refused, no message is sent", async () => {
    const before = peers.mx1.events().filter((e) => e.event === "data").length;
    const r = only(await transport.deliver(attempt("reject.test", ["nobody@reject.test"])));
    assert.deepEqual([r.status, r.enhancedCode], ["failed", "5.1.1"]);
    assert.equal(peers.mx1.events().filter((e) => e.event === "data").length, before);
  });

  test("an MX host that is down defers with 4.4.1", async () => {
    const r = only(await transport.deliver(attempt("down.test", ["eve@down.test"])));
    assert.equal(r.status, "deferred");
    assert.equal(r.enhancedCode, "4.4.1");
    assert.equal(r.remoteMta, "mx.down.test");
    assert.equal(r.remoteReply, false);
  });

  test("MTA-STS enforce: delivered over verified TLS, counted as an sts success, policy cached on disk", async () => {
    const r = only(await transport.deliver(attempt("sts-good.test", ["frank@sts-good.test"])));
    assert.equal(r.status, "delivered", r.diagnostic);
    const [p] = await policiesFor("sts-good.test");
    assert.equal(p.policy["policy-type"], "sts");
    assert.deepEqual(p.policy["mx-host"], ["mx.sts-good.test"]);
    assert.deepEqual(p.policy["policy-string"], ["version: STSv1", "mode: enforce", "mx: mx.sts-good.test", "max_age: 86400"]);
    assert.deepEqual(p.summary, { "total-successful-session-count": 1, "total-failure-session-count": 0 });
    const cached = JSON.parse(fs.readFileSync(path.join(dataDir, "queue", "mta-sts", "sts-good.test.json"), "utf8"));
    assert.deepEqual([cached.id, cached.mode, cached.mx], ["20250101", "enforce", ["mx.sts-good.test"]]);
  });

  test("MTA-STS enforce with an untrusted MX certificate: deferred, counted, and no mail transaction at all", async () => {
    const r = only(await transport.deliver(attempt("sts-bad.test", ["gina@sts-bad.test"])));
    assert.equal(r.status, "deferred");
    assert.equal(r.enhancedCode, "4.7.5");
    assert.match(r.diagnostic, /certificate-not-trusted/);
    assert.equal(r.remoteMta, "mx.sts-bad.test");
    const sessions = peers.bad
      .events()
      .filter((e) => e.event === "secure")
      .map((e) => e.id);
    assert.ok(sessions.length >= 1, "the TLS session was made");
    assert.deepEqual(
      peers.bad.events().filter((e) => sessions.includes(e.id) && ["mail", "rcpt", "data"].includes(e.event)),
      [],
    );
    // RFC 8460 4.3.1: an MX certificate without a trust anchor is certificate-not-trusted
    // (sts-webpki-invalid is for the policy host, next tests).
    const [p] = await policiesFor("sts-bad.test");
    assert.equal(p.policy["policy-type"], "sts");
    assert.deepEqual(p.summary, { "total-successful-session-count": 0, "total-failure-session-count": 1 });
    assert.deepEqual(
      p["failure-details"].map((f) => [f["result-type"], f["receiving-mx-hostname"], f["receiving-ip"]]),
      [["certificate-not-trusted", "mx.sts-bad.test", peers.bad.host.ipv4]],
    );
  });

  test("MTA-STS testing with an untrusted MX certificate: delivered, and the failure counted", async () => {
    const r = only(await transport.deliver(attempt("sts-testing.test", ["hank@sts-testing.test"])));
    assert.equal(r.status, "delivered", r.diagnostic);
    assert.equal(dataFor(peers.bad, "hank@sts-testing.test").length, 1);
    const [p] = await policiesFor("sts-testing.test");
    assert.deepEqual(p.summary, { "total-successful-session-count": 0, "total-failure-session-count": 1 });
    assert.equal(p["failure-details"][0]["result-type"], "certificate-not-trusted");
  });

  test("an MTA-STS policy host with an untrusted certificate is sts-webpki-invalid; without a cached policy the mail still goes", async () => {
    const r = only(await transport.deliver(attempt("sts-webpki.test", ["ivan@sts-webpki.test"])));
    assert.equal(r.status, "delivered", r.diagnostic);
    const policies = await policiesFor("sts-webpki.test");
    const sts = policies.find((p) => p.policy["policy-type"] === "sts");
    assert.deepEqual(
      sts?.["failure-details"].map((f) => f["result-type"]),
      ["sts-webpki-invalid"],
    );
    assert.equal(policies.find((p) => p.policy["policy-type"] === "no-policy-found")?.summary["total-successful-session-count"], 1);
  });

  test("at most maxConnectionsPerDomain connections to one domain at once; the others wait and take it in turn", async () => {
    const cfg = config({ maxConnectionsPerDomain: 1 });
    const limited = new SmtpTransport({ config: () => cfg, log: createLogger(() => undefined), tlsReport: report });
    const from = peers.mx1.events().length;
    const all = await Promise.all([1, 2, 3].map((i) => limited.deliver(attempt("v6.test", [`queue${i}@v6.test`]))));
    await limited.close();
    assert.deepEqual(
      all.map((r) => only(r).status),
      ["delivered", "delivered", "delivered"],
    );
    const events = peers.mx1.events().slice(from);
    const ours = new Set(events.filter((e) => e.event === "connect").map((e) => e.id));
    assert.equal(ours.size, 1, "one connection carried all three (connection-cache.ts)");
    assert.equal(events.filter((e) => e.event === "data").length, 3);
    const open = new Set<string>();
    let most = 0;
    for (const e of events) {
      if (e.event === "connect") open.add(e.id!);
      if (e.event === "close") open.delete(e.id!);
      most = Math.max(most, open.size);
    }
    assert.equal(most, 1);
  });

  test("log lines carry the attempt's id, domain, MX, address, TLS and policy", () => {
    const lines = logLines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const delivered = lines.find((l) => l.event === "outbound.delivery" && l.domain === "sts-good.test");
    assert.ok(delivered, logLines.join(""));
    assert.equal(delivered.mx, "mx.sts-good.test");
    assert.equal(delivered.ip, peers.mx1.host.ipv4);
    assert.equal(delivered.policy, "sts-enforce");
    assert.match(String(delivered.tls), /^TLSv1\.[23]$/);
    assert.equal(delivered.result, "delivered");
    assert.match(String(delivered.id), /^t\d+$/);
  });
});

/** Zone-file lines of `zone` signed with a fresh ECDSA P-256 key (one key signs everything). */
async function signZone(origin: string, lines: string[]): Promise<{ signed: string[]; trustAnchor: string }> {
  const dir = fs.mkdtempSync(path.join(internet.workDir, "sign-"));
  const key = (await mustRun(["dnssec-keygen", "-q", "-a", "ECDSAP256SHA256", "-f", "KSK", "-K", dir, origin], { cwd: dir })).trim();
  fs.writeFileSync(path.join(dir, "zone"), [`$ORIGIN ${origin}.`, "$TTL 300", ...lines].join("\n") + "\n");
  await mustRun(
    ["dnssec-signzone", "-S", "-K", dir, "-z", "-O", "full", "-o", origin, "-f", path.join(dir, "signed"), path.join(dir, "zone")],
    { cwd: dir },
  );
  const signed = fs
    .readFileSync(path.join(dir, "signed"), "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "" && !l.startsWith(";"));
  const trustAnchor = fs
    .readFileSync(path.join(dir, `${key}.key`), "utf8")
    .split("\n")
    .find((l) => l.includes("DNSKEY") && !l.startsWith(";"))!;
  return { signed, trustAnchor: trustAnchor.replace(/\s+/g, " ").trim() };
}

/** SHA-256 of a certificate's SubjectPublicKeyInfo: the data of a "3 1 1" TLSA record. */
function spkiSha256(certPath: string): string {
  const cert = new X509Certificate(fs.readFileSync(certPath));
  return createHash("sha256")
    .update(cert.publicKey.export({ type: "spki", format: "der" }))
    .digest("hex");
}

describe("DANE (RFC 7672) with a DNSSEC-validating resolver", () => {
  let dane: SmtpTransport;
  after(() => dane?.close());

  before(async () => {
    const dns2 = await internet.addHost("dns2");
    const resolver = await internet.addHost("resolver");
    const mx1 = peers.mx1.host;
    const bad = peers.bad.host;
    const zone = await signZone("dane.test", [
      "@ SOA ns.dane.test. hostmaster.dane.test. 1 3600 600 86400 60",
      "@ NS ns.dane.test.",
      `ns A ${dns2.ipv4}`,
      // TLSA 3 1 1 of the peer's own key: authenticated
      "@ MX 10 mx.dane.test.",
      `mx A ${mx1.ipv4}`,
      `mx AAAA ${mx1.ipv6}`,
      `_25._tcp.mx TLSA 3 1 1 ${spkiSha256(trusted.certPath)}`,
      // TLSA that matches nothing the peer shows
      "wrong MX 10 mx.wrong.dane.test.",
      `mx.wrong A ${mx1.ipv4}`,
      `_25._tcp.mx.wrong TLSA 3 1 1 ${"00".repeat(32)}`,
      // DANE-EE for a certificate no CA vouches for: the DNS record is the authority
      "ee MX 10 mx.ee.dane.test.",
      `mx.ee A ${bad.ipv4}`,
      `_25._tcp.mx.ee TLSA 3 1 1 ${spkiSha256(untrusted.certPath)}`,
      "bogus MX 10 mx.bogus.dane.test.",
      `mx.bogus A ${mx1.ipv4}`,
      `_25._tcp.mx.bogus TLSA 3 1 1 ${spkiSha256(trusted.certPath)}`,
    ]);
    // The TLSA signature of mx.bogus is damaged after signing: the resolver finds it bogus (SERVFAIL).
    const tampered = zone.signed.map((line) => {
      if (!/^_25\._tcp\.mx\.bogus\.dane\.test\.\s+\d+\s+IN\s+RRSIG\s+TLSA\s/.test(line)) return line;
      const parts = line.trimEnd().split(/\s+/);
      const last = parts[parts.length - 1];
      parts[parts.length - 1] = (last[0] === "A" ? "B" : "A") + last.slice(1);
      return parts.join(" ");
    });
    assert.notDeepEqual(tampered, zone.signed);
    await startKnot(internet, dns2, [{ origin: "dane.test.", lines: tampered }]);

    const dir = fs.mkdtempSync(path.join(internet.workDir, "unbound-"));
    const conf = path.join(dir, "unbound.conf");
    const dnsHost = internet.allHosts.find((h) => h.name === "dns")!;
    fs.writeFileSync(
      conf,
      `server:
  interface: ${resolver.ipv4}
  access-control: 0.0.0.0/0 allow
  do-ip6: no
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "${dir}"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 1
  module-config: "validator iterator"
  qname-minimisation: no
  local-zone: "test." nodefault
  trust-anchor: "${zone.trustAnchor}"
stub-zone:
  name: "dane.test."
  stub-addr: ${dns2.ipv4}
stub-zone:
  name: "test."
  stub-addr: ${dnsHost.ipv4}
remote-control:
  control-enable: no
`,
    );
    await mustRun(["unbound-checkconf", conf]);
    const child = resolver.spawn(["/usr/sbin/unbound", "-d", "-c", conf], { logFile: path.join(dir, "unbound.log") });
    await waitForPort(resolver.ipv4, 53, "unbound", 10_000, () => child.exitCode === null);
    const cfg = config({}, resolver.ipv4);
    dane = new SmtpTransport({ config: () => cfg, log: createLogger((l) => logLines.push(l)), tlsReport: report });
  });

  test("TLSA records that match the server's key: delivered, counted as a tlsa success", async () => {
    const r = only(await dane.deliver(attempt("dane.test", ["jane@dane.test"])));
    assert.equal(r.status, "delivered", r.diagnostic);
    assert.equal(dataFor(peers.mx1, "jane@dane.test").length, 1);
    const [p] = await policiesFor("dane.test");
    assert.equal(p.policy["policy-type"], "tlsa");
    assert.deepEqual(p.policy["policy-string"], [`3 1 1 ${spkiSha256(trusted.certPath)}`]);
    assert.deepEqual(p.summary, { "total-successful-session-count": 1, "total-failure-session-count": 0 });
  });

  test("TLSA records that match nothing: deferred, counted tlsa-invalid, no mail transaction", async () => {
    const r = only(await dane.deliver(attempt("wrong.dane.test", ["kim@wrong.dane.test"])));
    assert.deepEqual([r.status, r.enhancedCode, r.remoteMta], ["deferred", "4.7.5", "mx.wrong.dane.test"]);
    assert.deepEqual(
      peers.mx1.events().filter((e) => e.event === "rcpt" && e.to === "kim@wrong.dane.test"),
      [],
    );
    const [p] = await policiesFor("wrong.dane.test");
    assert.equal(p.policy["policy-type"], "tlsa");
    assert.deepEqual(
      p["failure-details"].map((f) => [f["result-type"], f["receiving-mx-hostname"]]),
      [["tlsa-invalid", "mx.wrong.dane.test"]],
    );
  });

  test("DANE-EE authenticates a certificate that no CA vouches for", async () => {
    const r = only(await dane.deliver(attempt("ee.dane.test", ["lee@ee.dane.test"])));
    assert.equal(r.status, "delivered", r.diagnostic);
    assert.equal(dataFor(peers.bad, "lee@ee.dane.test").length, 1);
    const [p] = await policiesFor("ee.dane.test");
    assert.deepEqual([p.policy["policy-type"], p.summary["total-successful-session-count"]], ["tlsa", 1]);
  });

  test("a TLSA lookup the resolver finds bogus: the host is not used, counted dnssec-invalid", async () => {
    const r = only(await dane.deliver(attempt("bogus.dane.test", ["max@bogus.dane.test"])));
    assert.deepEqual([r.status, r.enhancedCode], ["deferred", "4.7.5"]);
    assert.match(r.diagnostic, /TLSA lookup for mx\.bogus\.dane\.test failed/);
    assert.deepEqual(
      peers.mx1.events().filter((e) => e.event === "rcpt" && e.to === "max@bogus.dane.test"),
      [],
    );
    const [p] = await policiesFor("bogus.dane.test");
    assert.deepEqual(
      p["failure-details"].map((f) => f["result-type"]),
      ["dnssec-invalid"],
    );
  });

  test("an unsigned domain through the same validating resolver gets no DANE: opportunistic TLS as before", async () => {
    const r = only(await dane.deliver(attempt("v6.test", ["nina@v6.test"])));
    assert.equal(r.status, "delivered", r.diagnostic);
    const policies = await policiesFor("v6.test");
    assert.deepEqual(
      policies.map((p) => p.policy["policy-type"]),
      ["no-policy-found"],
    );
  });
});
