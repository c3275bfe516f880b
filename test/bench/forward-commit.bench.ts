/**
 * The durable part of forwarding alone, in one process: maild's MessageAcceptor takes messages for
 * one remote recipient (as receiving does after rspamd's verdict: the DATA held in memory, trace
 * fields on top) into its LocalStore and OutboundQueue on this machine's disk, SESSIONS at a time,
 * and the queue hands each to a transport that answers 250 at once, so the in-flight mark and the
 * removal are counted too. No network, no rspamd, no SMTP: what is measured is the file work per
 * forwarded message, which bench:outbound's figures mix with everything else and with the
 * machine's load.
 *
 *   npm run bench:forward-commit
 *   BENCH_MESSAGES=2000 BENCH_SESSIONS=10 BENCH_ROUNDS=3 npm run bench:forward-commit
 *
 * Per round: messages per second until the queue is empty, CPU of the process (all its threads:
 * the event loop and libuv's file system threads) per message, and the time from accept() to its
 * resolving (the wait before the client's 250), median and 90th percentile.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { validateMaildConfig } from "../../server-bootstrap/maild/config";
import { MessageAcceptor } from "../../server-bootstrap/maild/accept";
import { LocalStore, newMessageId } from "../../server-bootstrap/maild/delivery";
import { OutboundQueue } from "../../server-bootstrap/maild/outbound/queue";
import { createLogger } from "../../server-bootstrap/maild/log";
import type { RecipientResult } from "../../server-bootstrap/maild/outbound/types";
import { TEST_PASSWORD_HASH } from "../fixtures/password-hash";

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 2000);
const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SIZE = Number(process.env.BENCH_SIZE ?? 4096);

async function round(): Promise<{ rate: number; cpuMs: number; p50: number; p90: number }> {
  const dataDir = mkdtempSync(join(tmpdir(), "maild-forward-commit-"));
  const config = validateMaildConfig({
    hostname: "mx.example.org",
    dataDir,
    tls: { certPath: "/nonexistent/cert.pem", keyPath: "/nonexistent/key.pem" },
    domains: [{ name: "example.org" }],
    users: [{ address: "alice@example.org", passwordHash: TEST_PASSWORD_HASH }],
    aliases: [],
  });
  const log = createLogger(() => undefined);
  const store = new LocalStore(dataDir, () => config.hostname);
  await store.init();
  const queue = new OutboundQueue({
    dataDir,
    config: () => config,
    log,
    transport: {
      deliver: async (attempt): Promise<RecipientResult[]> =>
        attempt.recipients.map((recipient) => ({
          recipient,
          status: "delivered",
          enhancedCode: "2.0.0",
          diagnostic: "250 2.0.0 Ok",
          remoteReply: true,
          remoteMta: "mx.sink.test",
        })),
    },
    bounce: async () => {
      throw new Error("no notices in this benchmark");
    },
  });
  await queue.start();
  const accept = new MessageAcceptor(store, queue, log, () => config.limits);
  const body = Buffer.from(
    "From: load@example.net\r\nTo: fwd@example.org\r\nSubject: forward\r\n\r\n" + `${"x".repeat(78)}\r\n`.repeat(Math.ceil(SIZE / 80)),
    "latin1",
  );
  const waits: number[] = [];
  let next = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: SESSIONS }, async () => {
      while (next++ < MESSAGES) {
        const id = newMessageId();
        const t = performance.now();
        await accept.accept({
          id,
          held: [body],
          prepend: `Received: from load.example.net by mx.example.org with ESMTP id ${id}\r\n`,
          mailboxes: [],
          remote: ["x@sink.test"],
          sender: "load@example.net",
        });
        waits.push(performance.now() - t);
      }
    }),
  );
  while (queue.size() > 0) await queue.runDue();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await queue.stop();
  rmSync(dataDir, { recursive: true, force: true });
  waits.sort((a, b) => a - b);
  return {
    rate: MESSAGES / seconds,
    cpuMs: (cpu.user + cpu.system) / 1000 / MESSAGES,
    p50: waits[Math.floor(waits.length * 0.5)],
    p90: waits[Math.floor(waits.length * 0.9)],
  };
}

async function main(): Promise<void> {
  process.stdout.write(`${MESSAGES} forwarded messages of ${SIZE} bytes, ${SESSIONS} at a time, Node ${process.version}\n\n`);
  process.stdout.write(
    "| round | msgs/s | CPU ms/msg | wait for the commit, median ms | 90th percentile ms |\n|---:|---:|---:|---:|---:|\n",
  );
  for (let i = 1; i <= ROUNDS; i++) {
    const r = await round();
    process.stdout.write(`| ${i} | ${r.rate.toFixed(0)} | ${r.cpuMs.toFixed(3)} | ${r.p50.toFixed(1)} | ${r.p90.toFixed(1)} |\n`);
  }
}

main().catch((e: Error) => {
  process.stderr.write(`bench:forward-commit: ${e.stack ?? e.message}\n`);
  process.exit(1);
});
