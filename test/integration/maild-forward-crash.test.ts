// Durability of forwarded mail under SIGKILL. An alias (fwd@example.org) forwards to an address at
// remote.test, whose MX (served by knot) is a sink in its own namespace host that records every
// message it is given. Such a message has no local mailbox, so maild stores it only in its
// outbound queue (delivery.ts protocol C, outbound/spool.ts Q1': the envelope's rename is the
// commit point). Clients send to the alias while maild is killed with SIGKILL again and again and
// restarted at once; then the queue drains. Every message that got a 250 must reach the sink,
// whole; a second copy is allowed only where maild logged that message as a possible duplicate
// (the RFC 1047 window between the sink's 250 and the queue's record of it); the queue and the
// spool must end empty, with no temporary file left.
//
// A SIGKILL ends the process, not the machine: what was written reaches the disk from the page
// cache whatever was fsynced, so this test proves the order of commit point and 250 and the
// start-up cleanup, not the fsyncs (those only matter for a power loss).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { LocalInternet } from "../../infra/local-internet/netns";
import { startKnot } from "../../infra/local-internet/knot";
import { makeTestTls } from "../../infra/local-internet/test-tls";
import { waitForPort } from "../../infra/local-internet/wait-for-port";
import { startMaild } from "../harness/maild";
import { sendUnderKills } from "../harness/crash-load";
import { maildConfig } from "../fixtures/maild-config";

const REPO = path.resolve(__dirname, "../..");
const NODE = path.join(REPO, "node_modules/.bin/node");

/** at least this many messages are sent; the load goes on while the kills last */
const ATTEMPTS = 1200;
const WORKERS = 8;
/** SIGKILLs, 200-600 ms apart; afterwards the rest of the load runs to the end undisturbed */
const KILLS = 15;
const FORWARD_TO = "someone@remote.test";

/**
 * The sink: smtp-server on port 25, no STARTTLS (maild's TLS is opportunistic, RFC 7435), that
 * appends each message it takes (recipients and text) to a JSON-lines file before its 250.
 */
const SINK_SCRIPT = `
const fs = require("node:fs");
const { SMTPServer } = require(${JSON.stringify(require.resolve("smtp-server"))});
const [, , host, out] = process.argv;
const server = new SMTPServer({
  name: "mx.remote.test", disabledCommands: ["STARTTLS", "AUTH"], authOptional: true, logger: false, size: 1024 * 1024,
  onData(stream, session, cb) {
    const chunks = [];
    stream.on("data", (c) => chunks.push(c));
    stream.on("end", () => {
      fs.appendFileSync(out, JSON.stringify({ to: session.envelope.rcptTo.map((r) => r.address), body: Buffer.concat(chunks).toString("latin1") }) + "\\n");
      cb(null, "2.0.0 Ok: recorded");
    });
  },
});
server.on("error", () => undefined);
server.listen(25, host);
`;

let internet: LocalInternet | undefined;
after(async () => {
  await internet?.destroy();
});

function body(n: number): string {
  return (
    `From: load@lax.test\r\nTo: ${FORWARD_TO}\r\nSubject: forward ${n}\r\nMessage-ID: <forward-${n}@lax.test>\r\n` +
    `X-Attempt: ${n}\r\n\r\n` +
    `line of text for attempt ${n}\r\n`.repeat(20) +
    `End-Of-Attempt: ${n}\r\n`
  );
}

/** maild's JSON log lines; a line cut short by a SIGKILL is skipped (it cannot be the restart's possible_duplicate line, which a live process wrote whole). */
function logLines(logPath: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const l of fs.readFileSync(logPath, "utf8").split("\n")) {
    if (!l.startsWith("{")) continue;
    try {
      out.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      // cut short by the kill
    }
  }
  return out;
}

/** Every file (not directory) under `dir`, relative to it. */
function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile());
}

test("forwarded mail under repeated SIGKILLs: every acknowledged message reaches the remote MX whole, second copies only where logged as possible duplicates, and the queue ends empty", async () => {
  internet = await LocalInternet.create();
  const dns = await internet.addHost("dns");
  const mx = await internet.addHost("mx");
  const remote = await internet.addHost("remote");
  await startKnot(internet, dns, [
    { origin: "lax.test.", lines: [`lax.test. TXT "v=spf1 -all"`, `_dmarc.lax.test. TXT "v=DMARC1; p=none"`] },
    { origin: "remote.test.", lines: [`remote.test. MX 10 mx.remote.test.`, `mx.remote.test. A ${remote.ipv4}`] },
  ]);

  const received = path.join(internet.workDir, "sink.jsonl");
  fs.writeFileSync(received, "");
  const sinkScript = path.join(internet.workDir, "sink.js");
  fs.writeFileSync(sinkScript, SINK_SCRIPT);
  const sink = remote.spawn([NODE, sinkScript, remote.ipv4, received], { logFile: path.join(internet.workDir, "sink.log") });
  await waitForPort(remote.ipv4, 25, "sink", 10_000, () => sink.exitCode === null && sink.signalCode === null);

  const tlsFiles = await makeTestTls(path.join(internet.workDir, "tls"), ["mx.example.org"], "mx");
  const dataDir = path.join(internet.workDir, "data");
  const maild = await startMaild(
    internet,
    mx,
    maildConfig(
      mx,
      { dataDir, tls: tlsFiles },
      {
        aliases: [{ address: "fwd@example.org", to: [FORWARD_TO] }],
        listen: { smtp: [{ host: mx.ipv4, port: 25 }], http: [], https: [] },
        dnsServers: [dns.ipv4],
        limits: { maxConnectionsPerIp: 1000, maxConnections: 1000, maxMessagesPerIpPerMinute: 10_000_000 },
        shutdownTimeoutMs: 5000,
        // retries (of deliveries a kill cut off) come within the test's time
        outbound: { port: 25, retryBaseSeconds: 1, retryMaxSeconds: 2, timeoutMs: 10_000 },
      },
    ),
  );

  // unanswered: end of DATA sent, no reply: the kill came between, and the commit point may or
  // may not have been reached
  const { acked, unanswered, refused, attempted, kills } = await sendUnderKills(maild, {
    host: mx.ipv4,
    rcpt: "fwd@example.org",
    body,
    attempts: ATTEMPTS,
    workers: WORKERS,
    kills: KILLS,
  });
  // The test only proves something if kills really cut transactions off after their DATA.
  assert.ok(unanswered.size > 0, "no end of DATA was left unanswered by a kill");

  const queueDir = path.join(dataDir, "queue");
  const entries = (): string[] => fs.readdirSync(queueDir).filter((f) => f.endsWith(".json"));
  const deadline = Date.now() + 45_000;
  while (entries().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(entries(), [], "the queue drains");
  assert.equal(await maild.stop(), 0, "the last daemon shuts down cleanly");

  const logs = logLines(maild.logPath);
  const possible = new Set<string>();
  for (const l of logs.filter((e) => e.event === "queue.possible_duplicate")) {
    if ((l.recipients as string[]).includes(FORWARD_TO)) possible.add(String(l.id));
  }
  /** attempt -> maild's queue ids of its copies at the sink */
  const copies = new Map<number, string[]>();
  for (const line of fs.readFileSync(received, "utf8").split("\n").filter(Boolean)) {
    const m = JSON.parse(line) as { to: string[]; body: string };
    assert.deepEqual(m.to, [FORWARD_TO]);
    const n = Number(/^X-Attempt: (\d+)\r$/m.exec(m.body)?.[1]);
    assert.ok(Number.isInteger(n), `a message at the sink has no X-Attempt header:\n${m.body.slice(0, 500)}`);
    assert.ok(m.body.endsWith(`End-Of-Attempt: ${n}\r\n`), `attempt ${n} arrived cut short`);
    // the Received field maild added (trace-headers.ts) names its queue id
    const id = /^Received: [^]*?by mx\.example\.org[^]*?\bid (\d+\.M[0-9a-f]{24});/m.exec(m.body)?.[1];
    assert.ok(id, `attempt ${n} has no Received field of maild's with an id`);
    copies.set(n, [...(copies.get(n) ?? []), id]);
  }

  const missing = [...acked].filter((n) => !copies.has(n));
  // Neither refused nor cut off before its end of DATA: only an attempt whose end of DATA got no
  // reply may arrive unacknowledged, as the kill may have come after the commit point (the
  // envelope's rename) but before the 250 was written (RFC 1047); the client would send it again.
  const neverAcked = [...copies.keys()].filter((n) => !acked.has(n) && !unanswered.has(n));
  const unexplained = [...copies]
    .filter(([, ids]) => ids.length > 1)
    .filter(([, ids]) => new Set(ids).size > 1 || !possible.has(ids[0]))
    .map(([n, ids]) => `${n}: ${ids.join(", ")}`);
  assert.deepEqual(missing, [], "acknowledged but never delivered to the remote MX");
  assert.deepEqual(neverAcked, [], "delivered although refused or cut off before its end of DATA");
  assert.deepEqual(unexplained, [], "delivered more than once without a queue.possible_duplicate log");
  assert.deepEqual(filesUnder(queueDir), [], "no file left in the queue");
  assert.deepEqual(filesUnder(path.join(dataDir, "spool")), [], "no file left in the spool");
  assert.equal(logs.filter((e) => e.event === "queue.dsn_sent").length, 0, "no DSN");
  // Q1' makes I.json appear, by its rename, only once I.eml is whole: a crash can leave an I.eml
  // without I.json (deleted at start), never the reverse or a torn I.json.
  assert.deepEqual(
    logs.filter((e) => e.event === "queue.message_missing" || e.event === "queue.envelope_unreadable"),
    [],
    "no envelope without its message, none unreadable",
  );
  const orphans = logs.filter((e) => e.event === "queue.orphan_message").length;
  const twice = [...copies.values()].filter((ids) => ids.length > 1).length;
  const lateArrivals = [...copies.keys()].filter((n) => unanswered.has(n)).length;
  process.stderr.write(
    `# forward crash test: ${attempted} attempts, ${acked.size} acknowledged, ${refused} refused, ${unanswered.size} unanswered ` +
      `(${lateArrivals} of them delivered), ${kills} kills, ${orphans} half-made entries deleted at start, ${possible.size} logged as possible duplicates, ${twice} delivered twice\n`,
  );
});
