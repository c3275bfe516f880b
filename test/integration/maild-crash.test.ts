// Durability under SIGKILL: clients send thousands of messages while the daemon is killed with
// SIGKILL again and again and restarted at once. Every message that got a 250 must be in the
// mailbox exactly once; no message may be there twice; no half-written message may be visible.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { LocalInternet } from "../../infra/local-internet/netns";
import { startKnot } from "../../infra/local-internet/knot";
import { makeTestTls } from "../../infra/local-internet/test-tls";
import { startMaild } from "../harness/maild";
import { sendUnderKills } from "../harness/crash-load";
import { maildConfig } from "../fixtures/maild-config";

/** at least this many messages are sent; the load goes on while the kills last */
const ATTEMPTS = 2500;
const WORKERS = 16;
/** SIGKILLs, 200-600 ms apart; afterwards the rest of the load runs to the end undisturbed */
const KILLS = 15;

let internet: LocalInternet | undefined;
after(async () => {
  await internet?.destroy();
});

function body(n: number): string {
  return (
    `From: load@lax.test\r\nTo: alice@example.org\r\nSubject: load ${n}\r\nMessage-ID: <attempt-${n}@lax.test>\r\n` +
    `X-Attempt: ${n}\r\n\r\n` +
    `line of text for attempt ${n}\r\n`.repeat(20) +
    `End-Of-Attempt: ${n}\r\n`
  );
}

test("after repeated SIGKILLs under load, every acknowledged message is in the mailbox exactly once and none twice", async () => {
  internet = await LocalInternet.create();
  const dns = await internet.addHost("dns");
  const mx = await internet.addHost("mx");
  await startKnot(internet, dns, [
    { origin: "lax.test.", lines: [`lax.test. TXT "v=spf1 -all"`, `_dmarc.lax.test. TXT "v=DMARC1; p=none"`] },
  ]);
  const tlsFiles = await makeTestTls(path.join(internet.workDir, "tls"), ["mx.example.org"], "mx");
  const dataDir = path.join(internet.workDir, "data");
  const maild = await startMaild(
    internet,
    mx,
    maildConfig(
      mx,
      { dataDir, tls: tlsFiles },
      {
        listen: { smtp: [{ host: mx.ipv4, port: 25 }], http: [], https: [] },
        dnsServers: [dns.ipv4],
        limits: { maxConnectionsPerIp: 1000, maxConnections: 1000, maxMessagesPerIpPerMinute: 10_000_000 },
        shutdownTimeoutMs: 5000,
      },
    ),
  );

  const { acked, interrupted, attempted, kills } = await sendUnderKills(maild, {
    host: mx.ipv4,
    rcpt: "alice@example.org",
    body,
    attempts: ATTEMPTS,
    workers: WORKERS,
    kills: KILLS,
  });
  assert.equal(await maild.stop(), 0, "the last daemon shuts down cleanly");
  // The test only proves something if kills really cut transactions off.
  assert.ok(interrupted > 0, "no transaction was interrupted by a kill");

  const seen = new Map<number, number>();
  const maildir = path.join(dataDir, "mail", "example.org", "alice", "Maildir");
  for (const sub of ["new", "cur"]) {
    for (const f of fs.readdirSync(path.join(maildir, sub))) {
      const text = fs.readFileSync(path.join(maildir, sub, f), "latin1");
      const n = Number(/^X-Attempt: (\d+)\r$/m.exec(text)?.[1]);
      assert.ok(Number.isInteger(n), `${f} has no X-Attempt header`);
      assert.ok(text.endsWith(`End-Of-Attempt: ${n}\r\n`), `${f} is not complete`);
      seen.set(n, (seen.get(n) ?? 0) + 1);
    }
  }
  const missing = [...acked].filter((n) => !seen.has(n));
  const twice = [...seen].filter(([, count]) => count > 1).map(([n]) => n);
  assert.deepEqual(missing, [], "acknowledged but not in the mailbox");
  assert.deepEqual(twice, [], "in the mailbox more than once");
  assert.deepEqual(fs.readdirSync(path.join(dataDir, "spool", "incoming")), [], "the spool is empty after a clean stop");
  assert.deepEqual(fs.readdirSync(path.join(maildir, "tmp")), []);
  process.stderr.write(
    `# crash test: ${attempted} attempts, ${acked.size} acknowledged, ${interrupted} interrupted, ${kills} kills, ${seen.size - acked.size} unacknowledged but delivered\n`,
  );
});
