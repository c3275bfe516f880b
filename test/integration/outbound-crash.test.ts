// Durability of the outbound queue under SIGKILL. 300 messages, each for one recipient at a.test
// and one at b.test, are queued (half by enqueue, half by enqueueMessage); then a child process
// flushes the queue to an SMTP sink on loopback and is killed with SIGKILL again and again during
// the flush, restarted each time, and finally left to finish. Every recipient must get its message at least once; a second copy
// is allowed only where the restart logged that recipient as a possible duplicate (the RFC 1047
// window between the sink's 250 and our record of it); the queue must end empty.
//
// The child is this file run again with OUTBOUND_CRASH_CHILD=run. Its transport is a plain
// nodemailer SMTPConnection per attempt (the queue depends only on the Transport interface).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createReadStream, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import SMTPConnection from "nodemailer/lib/smtp-connection";
import { SMTPServer } from "smtp-server";
import { validateMaildConfig, type MaildConfig } from "../../server-bootstrap/maild/config";
import { createLogger } from "../../server-bootstrap/maild/log";
import { OutboundQueue } from "../../server-bootstrap/maild/outbound/queue";
import type { DeliveryAttempt, RecipientResult, Transport } from "../../server-bootstrap/maild/outbound/types";

const MESSAGES = 300;
/** SIGKILLs during the flush, each 0-300 ms after the child's first delivery */
const KILLS = 6;
const REPO = resolve(__dirname, "../..");
const NODE = join(REPO, "node_modules/.bin/node");

function queueId(seq: number): string {
  return `1736164800.M${seq.toString(16).padStart(24, "0")}`;
}

function config(dataDir: string): MaildConfig {
  return validateMaildConfig({
    hostname: "mx.example.org",
    dataDir,
    tls: { certPath: "/etc/maild/cert.pem", keyPath: "/etc/maild/key.pem" },
    domains: [{ name: "example.org" }],
    users: [{ address: "alice@example.org", passwordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo" }],
    aliases: [],
    shutdownTimeoutMs: 5000,
    // few messages at a time, so the flush lasts long enough to be killed several times
    outbound: { retryBaseSeconds: 1, retryMaxSeconds: 2, delayNoticeAfterSeconds: 0, expireAfterSeconds: 3600, maxConnections: 4 },
  });
}

/** One SMTP connection per attempt to the sink; every reply becomes a per-recipient result. */
class SinkTransport implements Transport {
  constructor(private readonly port: number) {}

  deliver(attempt: DeliveryAttempt): Promise<RecipientResult[]> {
    return new Promise((resolveResults) => {
      const conn = new SMTPConnection({
        host: "127.0.0.1",
        port: this.port,
        ignoreTLS: true,
        name: "mx.example.org",
        connectionTimeout: 10_000,
        greetingTimeout: 10_000,
        socketTimeout: 10_000,
      });
      let settled = false;
      const finish = (results: RecipientResult[]): void => {
        if (settled) return;
        settled = true;
        conn.close();
        resolveResults(results);
      };
      const result = (recipient: string, code: number | undefined, reply: string): RecipientResult => ({
        recipient,
        status: code !== undefined && code < 300 ? "delivered" : code !== undefined && code >= 500 ? "failed" : "deferred",
        enhancedCode: /^\d{3}[ -](\d\.\d{1,3}\.\d{1,3})/.exec(reply)?.[1] ?? (code !== undefined && code >= 500 ? "5.0.0" : "4.0.0"),
        diagnostic: reply,
        remoteReply: code !== undefined,
        remoteMta: "sink.test",
      });
      conn.once("error", (err: Error & { responseCode?: number; response?: string }) => {
        finish(attempt.recipients.map((r) => result(r, err.responseCode, err.response ?? err.message)));
      });
      conn.once("end", () =>
        finish(attempt.recipients.map((r) => result(r, undefined, "connection closed before the end of the transaction"))),
      );
      conn.connect(() => {
        conn.send(
          { from: attempt.sender || false, to: attempt.recipients, size: attempt.size },
          createReadStream(attempt.messagePath),
          (err, info) => {
            const rejected = new Map(((err ?? info)?.rejectedErrors ?? []).map((e) => [(e as { recipient?: string }).recipient, e]));
            finish(
              attempt.recipients.map((r) => {
                const rej = rejected.get(r);
                if (rej) return result(r, rej.responseCode, rej.response ?? rej.message);
                if (err) return result(r, err.responseCode, err.response ?? err.message);
                return result(r, 250, info.response);
              }),
            );
          },
        );
      });
    });
  }
}

/** The child: flush the queue in dataDir to the sink, exit 0 once it is empty. */
async function runChild(): Promise<void> {
  const dataDir = process.env.OUTBOUND_CRASH_DATA_DIR!;
  const cfg = config(dataDir);
  const log = createLogger();
  const queue = new OutboundQueue({
    dataDir,
    config: () => cfg,
    log,
    transport: new SinkTransport(Number(process.env.OUTBOUND_CRASH_SINK_PORT)),
    bounce: async (dsn) => {
      throw new Error(`unexpected DSN to ${dsn.recipient}`);
    },
  });
  await queue.start();
  const poll = setInterval(() => {
    if (queue.size() > 0) return;
    clearInterval(poll);
    void queue.stop().then(() => {
      log.info("child.empty", {});
      process.exit(0);
    });
  }, 20);
}

if (process.env.OUTBOUND_CRASH_CHILD === "run") {
  void runChild();
} else {
  test("SIGKILLs during the flush lose no message, and every second copy was logged as a possible duplicate", async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), "maild-outbound-crash-"));
    t.after(() => rmSync(dataDir, { recursive: true, force: true }));

    // The sink: counts each accepted copy per recipient; greylists every tenth b.test recipient
    // once, so retries (and their backoff) cross restarts too.
    const arrivals = new Map<string, number>();
    const greylisted = new Set<string>();
    const sink = new SMTPServer({
      authOptional: true,
      disabledCommands: ["STARTTLS", "AUTH"],
      logger: false,
      size: 1024 * 1024,
      onRcptTo(address, _session, cb) {
        const m = /^m(\d+)@b\.test$/.exec(address.address);
        if (m && Number(m[1]) % 10 === 0 && !greylisted.has(address.address)) {
          greylisted.add(address.address);
          const err = new Error("4.7.1 Greylisted, try again later") as Error & { responseCode: number };
          err.responseCode = 451;
          return cb(err);
        }
        cb();
      },
      onData(stream, session, cb) {
        const chunks: Buffer[] = [];
        stream.on("data", (c: Buffer) => chunks.push(c));
        stream.on("end", () => {
          const text = Buffer.concat(chunks).toString("latin1");
          const seq = /^X-Seq: (\d+)\r$/m.exec(text)?.[1];
          if (seq === undefined || !text.endsWith(`End-Of-Message: ${seq}\r\n`)) return cb(new Error("incomplete message"));
          for (const r of session.envelope.rcptTo) arrivals.set(r.address, (arrivals.get(r.address) ?? 0) + 1);
          setTimeout(() => cb(null, "2.0.0 Ok: queued"), Math.random() * 20);
        });
      },
    });
    // a killed child resets its connections: not the sink's problem
    sink.on("error", () => undefined);
    await new Promise<void>((r) => sink.listen(0, "127.0.0.1", () => r()));
    t.after(() => new Promise<void>((r) => sink.close(() => r())));
    const port = (sink.server.address() as { port: number }).port;

    // Queue every message, as receiving does (an fsynced file linked in, then committed). The
    // queue is only stopped here, never committed: what is on disk at start counts as committed.
    const filler = new OutboundQueue({
      dataDir,
      config: () => config(dataDir),
      log: createLogger(() => undefined),
      transport: {
        deliver: async () => {
          throw new Error("the filler never sends");
        },
      },
      bounce: async () => undefined,
    });
    await filler.start();
    mkdirSync(join(dataDir, "incoming"));
    for (let seq = 0; seq < MESSAGES; seq++) {
      const path = join(dataDir, "incoming", `${seq}.eml`);
      const message =
        `From: alice@example.org\r\nTo: m${seq}@a.test, m${seq}@b.test\r\nSubject: crash ${seq}\r\nX-Seq: ${seq}\r\n\r\n` +
        `line of text for message ${seq}\r\n`.repeat(30) +
        `End-Of-Message: ${seq}\r\n`;
      const entry = { id: queueId(seq), sender: "alice@example.org", recipients: [`m${seq}@a.test`, `m${seq}@b.test`] };
      // both ways in: a link to a file the caller made (delivery.ts protocol B), or the message
      // written by the queue itself (protocol C)
      if (seq % 2 === 0) {
        writeFileSync(path, message);
        await filler.enqueue({ ...entry, messagePath: path });
      } else await filler.enqueueMessage(entry, Buffer.from(message, "latin1"));
    }
    assert.equal(filler.size(), MESSAGES);
    await filler.stop();

    const logs: Record<string, unknown>[] = [];
    const startChild = (): { child: ChildProcess; loaded: Promise<void>; exited: Promise<number | null> } => {
      const child = spawn(NODE, ["--import", "tsx", __filename], {
        cwd: REPO,
        stdio: ["ignore", "pipe", "inherit"],
        env: { ...process.env, OUTBOUND_CRASH_CHILD: "run", OUTBOUND_CRASH_DATA_DIR: dataDir, OUTBOUND_CRASH_SINK_PORT: String(port) },
      });
      let onLoaded: () => void = () => undefined;
      const loaded = new Promise<void>((r) => (onLoaded = r));
      createInterface({ input: child.stdout! }).on("line", (line) => {
        if (!line.startsWith("{")) return;
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.event === "queue.loaded") onLoaded();
      });
      const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
      return { child, loaded, exited };
    };
    const delivered = (): number => [...arrivals.values()].reduce((a, b) => a + b, 0);

    let kills = 0;
    for (; kills < KILLS; kills++) {
      const run = startChild();
      await Promise.race([run.loaded, run.exited]);
      // kill in the middle of the flush: once this run has delivered something, at a random moment
      const before = delivered();
      while (delivered() === before && run.child.exitCode === null) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, Math.random() * 300));
      assert.equal(run.child.exitCode, null, `the flush ended before kill ${kills + 1}: make it longer (more messages)`);
      run.child.kill("SIGKILL");
      await run.exited;
    }
    const last = startChild();
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([last.exited, new Promise<string>((r) => (timer = setTimeout(() => r("timeout"), 60_000)))]);
    clearTimeout(timer);
    if (code !== 0) last.child.kill("SIGKILL");
    assert.equal(
      code,
      0,
      `the last run empties the queue and exits; files left in the queue: ${readdirSync(join(dataDir, "queue"))
        .filter((f) => f.endsWith(".json"))
        .map((f) => readFileSync(join(dataDir, "queue", f), "utf8"))
        .join("\n")}; last log lines:\n${logs
        .slice(-15)
        .map((l) => JSON.stringify(l))
        .join("\n")}`,
    );

    const possible = new Set<string>();
    for (const l of logs.filter((e) => e.event === "queue.possible_duplicate")) {
      for (const r of l.recipients as string[]) possible.add(`${String(l.id)} ${r}`);
    }
    const missing: string[] = [];
    const unexplained: string[] = [];
    let duplicates = 0;
    for (let seq = 0; seq < MESSAGES; seq++) {
      for (const r of [`m${seq}@a.test`, `m${seq}@b.test`]) {
        const n = arrivals.get(r) ?? 0;
        if (n === 0) missing.push(r);
        if (n > 1) {
          duplicates++;
          if (!possible.has(`${queueId(seq)} ${r}`)) unexplained.push(`${r} x${n}`);
        }
      }
    }
    assert.deepEqual(missing, [], "queued but never delivered");
    assert.deepEqual(unexplained, [], "delivered twice without a possible_duplicate log at restart");
    assert.equal(greylisted.size, MESSAGES / 10, "every greylisted recipient was retried");
    assert.deepEqual(readdirSync(join(dataDir, "queue")), [], "the queue ends empty");
    assert.equal(logs.filter((e) => e.event === "queue.dsn_sent" || e.level === "error").length, 0, "no DSN and no error");
    process.stderr.write(
      `# outbound crash test: ${MESSAGES * 2} recipients, ${kills} kills, ${possible.size} logged as possible duplicates, ${duplicates} delivered twice\n`,
    );
  });
}
