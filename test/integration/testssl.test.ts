// testssl.sh (Debian's testssl.sh 3.0.8) against every TLS port of the box in the local internet:
// maild on 25 and 587 (STARTTLS), 465 (implicit TLS) and 443 (HTTPS), Dovecot on 993 with the
// box's generated configuration. Nothing MEDIUM or above may be reported, except the findings that
// only a certificate from the test's own CA causes (CERTIFICATE_FINDINGS below, each with why).
// testssl is slow: the five runs go in parallel, with --fast (one cipher scan with openssl
// instead of each cipher one by one) and without client simulation (-c), which only lists which
// browser or mail client would pick which cipher; every check that assigns a severity still runs.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { LocalInternet, type NetHost } from "../../infra/local-internet/netns";
import { makeTestTls, type TestTls } from "../../infra/local-internet/test-tls";
import { startKnot } from "../../infra/local-internet/knot";
import { startDovecot, type DovecotServer } from "../../infra/local-internet/dovecot";
import { startMaild } from "../harness/maild";
import { maildConfig } from "../fixtures/maild-config";
import { TEST_PASSWORD_HASH } from "../fixtures/password-hash";

const HOSTNAME = "mx.example.org";

/**
 * testssl finding ids that a certificate from a throwaway test CA triggers, and a real one from
 * the ACME CA does not. Anything else at MEDIUM or above fails the test.
 */
const CERTIFICATE_FINDINGS: Record<string, string> = {
  // makeTestTls certificates live 30 days; testssl says HIGH below 30 days left, MEDIUM below 60
  // (DAYS2WARN2/DAYS2WARN1, /usr/bin/testssl 3.0.8 l.249-250), and halves both for an issuer named
  // Let's Encrypt (l.8872-8877), whose certificates the box renews with a third of 90 days left
  cert_expirationStatus: "the test certificate is valid for 30 days",
  cert_notAfter: "the same expiry date, reported with the severity of cert_expirationStatus",
  // `openssl x509 -req` writes no CRL distribution point or OCSP URL (l.9035-9040); a public
  // CA's certificates carry them
  cert_revocation: "the test CA publishes no CRL or OCSP responder",
};

interface Finding {
  id: string;
  ip?: string;
  port?: string;
  severity: string;
  finding: string;
}

let internet: LocalInternet;
let mx: NetHost, scanner: NetHost;
let tlsFiles: TestTls;
let dovecot: DovecotServer;

before(async () => {
  internet = await LocalInternet.create();
  // maild's resolver (and whatever else on the box asks DNS) gets answers from the local internet
  const dns = await internet.addHost("dns");
  await startKnot(internet, dns, [{ origin: "example.org.", lines: [`example.org. TXT "v=spf1 -all"`] }]);
  await internet.setResolver(dns.ipv4);
  mx = await internet.addHost("mx");
  scanner = await internet.addHost("scanner");
  tlsFiles = await makeTestTls(path.join(internet.workDir, "tls"), [HOSTNAME], "mx");
  const dataDir = path.join(internet.workDir, "data");
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o755 });
  const config = maildConfig(
    mx,
    { dataDir, tls: tlsFiles },
    {
      listen: {
        smtp: [{ host: mx.ipv4, port: 25 }],
        submission: [{ host: mx.ipv4, port: 587 }],
        submissions: [{ host: mx.ipv4, port: 465 }],
        http: [],
        https: [{ host: mx.ipv4, port: 443 }],
      },
      dnsServers: [dns.ipv4],
      // testssl opens hundreds of connections, several at once
      limits: { maxConnectionsPerIp: 100, maxMessagesPerIpPerMinute: 10_000 },
    },
  );
  await startMaild(internet, mx, config as unknown as Record<string, unknown>);
  dovecot = await startDovecot(internet, mx, {
    dataDir,
    users: [{ address: "alice@example.org", passwordHash: TEST_PASSWORD_HASH }],
    tls: tlsFiles,
  });
});

after(async () => {
  await dovecot?.stop();
  await internet?.destroy();
});

/** One testssl run against HOSTNAME:port at the mx's address; resolves with its findings. */
async function testssl(port: number, starttls?: "smtp" | "imap"): Promise<{ findings: Finding[]; seconds: number; output: string }> {
  const json = path.join(internet.workDir, `testssl-${port}.json`);
  const argv = [
    "testssl",
    "--quiet",
    "--color",
    "0",
    "--warnings",
    "batch",
    "--nodns",
    "none",
    "--ip",
    mx.ipv4,
    "--add-ca",
    tlsFiles.caPath,
    "--fast",
    "--jsonfile",
    json,
    ...(starttls ? ["--starttls", starttls] : []),
    // the default run (protocols, cipher categories, forward secrecy, server preference, server
    // defaults, HTTP headers, vulnerabilities) without client simulation
    "-p",
    "-s",
    "-f",
    "-P",
    "-S",
    "-h",
    "-U",
    `${HOSTNAME}:${port}`,
  ];
  const t0 = Date.now();
  const r = await scanner.run(argv, { timeoutMs: 600_000 });
  const seconds = (Date.now() - t0) / 1000;
  assert.ok(fs.existsSync(json), `testssl wrote no ${json} (exit ${r.code}):\n${r.stdout.slice(-3000)}\n${r.stderr}`);
  return { findings: JSON.parse(fs.readFileSync(json, "utf8")) as Finding[], seconds, output: r.stdout };
}

describe("testssl.sh reports nothing MEDIUM or above on any TLS port (test-CA certificate findings aside)", () => {
  const ports: [number, "smtp" | "imap" | undefined, string][] = [
    [25, "smtp", "maild SMTP, STARTTLS"],
    [587, "smtp", "maild submission, STARTTLS"],
    [465, undefined, "maild submission, implicit TLS"],
    [993, undefined, "Dovecot IMAPS"],
    [443, undefined, "maild HTTPS"],
  ];
  let runs: Promise<{ findings: Finding[]; seconds: number; output: string }[]>;
  before(() => {
    runs = Promise.all(ports.map(([port, starttls]) => testssl(port, starttls)));
    runs.catch(() => undefined);
  });

  for (const [port, , what] of ports) {
    test(`${port} (${what})`, async () => {
      const results = await runs;
      const { findings, seconds, output } = results[ports.findIndex(([p]) => p === port)];
      console.log(`testssl on ${port}: ${seconds.toFixed(0)} s, ${findings.length} findings`);
      assert.ok(
        findings.some((f) => f.id === "protocol_negotiated" || f.id === "TLS1_2"),
        `testssl tested nothing on ${port}:\n${output.slice(-2000)}`,
      );
      const severe = findings.filter((f) => ["MEDIUM", "HIGH", "CRITICAL"].includes(f.severity));
      const caused = severe.filter((f) => f.id in CERTIFICATE_FINDINGS);
      const others = severe.filter((f) => !(f.id in CERTIFICATE_FINDINGS));
      assert.deepEqual(
        others.map((f) => `${f.severity} ${f.id}: ${f.finding}`),
        [],
        `findings at MEDIUM or above on ${port}`,
      );
      for (const f of caused) console.log(`  (test CA) ${f.severity} ${f.id}: ${f.finding} -- ${CERTIFICATE_FINDINGS[f.id]}`);
      for (const f of findings.filter((x) => x.severity === "LOW")) console.log(`  LOW ${f.id}: ${f.finding}`);
      // the TLS facts the issue names, as testssl sees them
      const byId = new Map(findings.map((f) => [f.id, f]));
      assert.equal(byId.get("TLS1")?.finding, "not offered");
      assert.equal(byId.get("TLS1_1")?.finding, "not offered");
      assert.match(byId.get("TLS1_2")?.finding ?? "", /^offered/);
      assert.match(byId.get("secure_client_renego")?.finding ?? "", /not vulnerable/);
    });
  }
});
