// Connection reuse against a real MX in the local internet: Debian's Postfix receives for
// peer.test (STARTTLS with a certificate from a CA we trust), knot serves its MX. maild's outbound
// queue and SMTP transport run in the test process (they reach the namespace hosts through the
// root leg of the bridge), with the daemon's defaults but for the per-domain cap. What counts is
// what Postfix saw: how many SMTP connections carried the messages (its smtpd logs every
// "connect from" and "disconnect from"), and that every message arrived exactly once.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { LocalInternet, type NetHost } from "../../infra/local-internet/netns";
import { startKnot } from "../../infra/local-internet/knot";
import { makeTestTls } from "../../infra/local-internet/test-tls";
import { startPostfix, type PostfixPeer } from "../../infra/local-internet/postfix";
import { validateMaildConfig, type MaildConfig } from "../../server-bootstrap/maild/config";
import { createLogger } from "../../server-bootstrap/maild/log";
import { OutboundQueue } from "../../server-bootstrap/maild/outbound/queue";
import { SmtpTransport } from "../../server-bootstrap/maild/outbound/transport";
import { TlsReport } from "../../server-bootstrap/maild/outbound/tls-report";

const MESSAGES = 40;
const PER_DOMAIN = 2;
const DAY = "2025-06-01";

let internet: LocalInternet | undefined;
let peerHost: NetHost;
let peer: PostfixPeer | undefined;
let dataDir: string;
let config: MaildConfig;

before(async () => {
  internet = await LocalInternet.create();
  const dns = await internet.addHost("dns");
  peerHost = await internet.addHost("peer");
  const tls = await makeTestTls(path.join(internet.workDir, "tls"), ["mail.peer.test"], "peer");
  await startKnot(internet, dns, [
    {
      origin: "peer.test.",
      lines: [`peer.test. MX 10 mail.peer.test.`, `mail.peer.test. A ${peerHost.ipv4}`, `mail.peer.test. AAAA ${peerHost.ipv6}`],
    },
  ]);
  await internet.setResolver(dns.ipv4);
  peer = await startPostfix(internet, peerHost, {
    myhostname: "mail.peer.test",
    mydomain: "peer.test",
    receive: { domains: ["peer.test"] },
    smtpdTls: { certPem: fs.readFileSync(tls.certPath, "utf8"), keyPem: fs.readFileSync(tls.keyPath, "utf8") },
  });
  dataDir = path.join(internet.workDir, "data");
  fs.mkdirSync(path.join(dataDir, "incoming"), { recursive: true });
  const caPath = path.join(internet.workDir, "ca.pem");
  fs.writeFileSync(caPath, tls.caPem);
  config = validateMaildConfig({
    hostname: "mail.sender.test",
    dataDir,
    tls: { certPath: "/nonexistent/cert.pem", keyPath: "/nonexistent/key.pem" },
    domains: [{ name: "sender.test" }],
    users: [],
    aliases: [],
    dnsServers: [dns.ipv4],
    outbound: { extraCaPath: caPath, maxConnectionsPerDomain: PER_DOMAIN, timeoutMs: 10_000 },
  });
});

after(async () => {
  await peer?.stop();
  await internet?.destroy();
});

test(`${MESSAGES} messages queued at once for one MX travel over at most ${PER_DOMAIN} connections, each message once`, async () => {
  const logLines: string[] = [];
  const report = new TlsReport({ dataDir: () => dataDir, now: () => new Date(`${DAY}T12:00:00Z`) });
  const transport = new SmtpTransport({ config: () => config, log: createLogger((l) => logLines.push(l)), tlsReport: report });
  const queue = new OutboundQueue({
    dataDir,
    config: () => config,
    log: createLogger((l) => logLines.push(l)),
    transport,
    bounce: async (dsn) => {
      throw new Error(`unexpected DSN to ${dsn.recipient}`);
    },
  });
  await queue.start();
  for (let i = 0; i < MESSAGES; i++) {
    const file = path.join(dataDir, "incoming", `${i}.eml`);
    fs.writeFileSync(file, `From: ann@sender.test\r\nTo: r${i}@peer.test\r\nSubject: reuse ${i}\r\n\r\nmessage ${i}\r\n`);
    const id = `1736164800.M${i.toString(16).padStart(24, "0")}`;
    await queue.enqueue({ id, messagePath: file, sender: "ann@sender.test", recipients: [`r${i}@peer.test`] });
    queue.commit(id);
  }
  await queue.runDue();
  assert.equal(queue.size(), 0, logLines.filter((l) => l.includes('"deferred"')).join(""));
  // ends the queue and, through the transport, the cached connections (QUIT)
  await queue.stop();

  for (let waited = 0; peer!.received().length < MESSAGES && waited < 30_000; waited += 100) await new Promise((r) => setTimeout(r, 100));
  const subjects = peer!.received().map((m) => /^Subject: (.*)$/m.exec(m)?.[1]);
  assert.deepEqual(
    subjects.sort(),
    Array.from({ length: MESSAGES }, (_, i) => `reuse ${i}`).sort(),
    "every message arrived, and only once",
  );

  // Postfix's smtpd ends each connection's log with "disconnect from unknown[IP] ehlo=1
  // starttls=1 mail=N rcpt=N data=N quit=1 commands=..."; startPostfix's port probe sent no EHLO.
  const sessions = (): string[] =>
    peer!
      .log()
      .split("\n")
      .filter((l) => /postfix\/smtpd\[\d+\]: disconnect from .* ehlo=/.test(l));
  for (let waited = 0; sessions().length === 0 && waited < 5000; waited += 100) await new Promise((r) => setTimeout(r, 100));
  const ours = sessions();
  assert.ok(ours.length >= 1 && ours.length <= PER_DOMAIN, `connections at Postfix: ${ours.length}\n${ours.join("\n")}`);
  const mailsIn = (line: string) => Number(/ mail=(\d+)/.exec(line)?.[1] ?? 0);
  assert.ok(
    ours.some((d) => mailsIn(d) > 1),
    `a connection carried several transactions: ${ours.join("\n")}`,
  );
  assert.equal(
    ours.reduce((n, d) => n + mailsIn(d), 0),
    MESSAGES,
    "one MAIL per message over all connections",
  );
  for (const d of ours) assert.match(d, / starttls=1 .* quit=1 /, `STARTTLS once per connection, and a polite end: ${d}`);

  // RFC 8460: one TLS session per connection, each verified (the CA is trusted), none per message
  const day = await report.readDay(DAY);
  const policy = day?.policies.find((p) => p.policy["policy-domain"] === "peer.test");
  assert.deepEqual(policy?.summary, { "total-successful-session-count": ours.length, "total-failure-session-count": 0 });

  process.stderr.write(
    `# connection reuse: ${MESSAGES} messages over ${ours.length} connections (MAIL per connection: ${ours.map(mailsIn).join(", ")})\n`,
  );

  const deliveries = logLines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.event === "outbound.delivery");
  assert.equal(deliveries.length, MESSAGES);
  assert.ok(deliveries.every((d) => d.result === "delivered" && /^TLSv1\.[23]$/.test(String(d.tls))));
  assert.equal(deliveries.filter((d) => d.transaction === 1).length, ours.length, "one first transaction per connection");
});
