// The client's verified host name (FCrDNS) on port 25 is looked up once per session: every
// transaction of a reused connection gets the first lookup's answer, a new session looks again.
// maild's InboundSmtp on loopback with its real router and store; the DNS server is a small UDP
// responder here that answers the PTR and A questions verifiedHostname asks and counts them; the
// spam check records what it is given.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import * as dgram from "node:dgram";
import type { AddressInfo } from "node:net";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import SMTPConnection from "nodemailer/lib/smtp-connection";
import { validateMaildConfig } from "../../server-bootstrap/maild/config";
import { InboundSmtp } from "../../server-bootstrap/maild/inbound";
import { MessageAcceptor } from "../../server-bootstrap/maild/accept";
import { LocalStore } from "../../server-bootstrap/maild/delivery";
import { Router } from "../../server-bootstrap/maild/router";
import { createLogger } from "../../server-bootstrap/maild/log";
import { loadTls } from "../../server-bootstrap/maild/tls";
import type { SpamCheck } from "../../server-bootstrap/maild/spam-check";
import type { RemoteQueue } from "../../server-bootstrap/maild/remote-queue";
import { makeTestTls } from "../../infra/local-internet/test-tls";
import { TEST_PASSWORD_HASH } from "../fixtures/password-hash";

const CLIENT_NAME = "client.example.net";
/** the client connects from this address: one of loopback's, and in no hosts file (c-ares reads /etc/hosts before asking) */
const CLIENT_IP = "127.0.0.77";
const PTR_NAME = "77.0.0.127.in-addr.arpa";

/** The question of a DNS query (RFC 1035 4.1.2): its name and type, and where the question ends. */
function question(msg: Buffer): { name: string; type: number; end: number } {
  const labels: string[] = [];
  let off = 12;
  while (msg[off] !== 0) {
    labels.push(msg.subarray(off + 1, off + 1 + msg[off]).toString("ascii"));
    off += 1 + msg[off];
  }
  return { name: labels.join(".").toLowerCase(), type: msg.readUInt16BE(off + 1), end: off + 5 };
}

function encodeName(name: string): Buffer {
  return Buffer.concat([
    ...name.split(".").map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, "ascii")])),
    Buffer.from([0]),
  ]);
}

/** A reply with the query's question and at most one answer (RFC 1035 4.1.1, 4.1.3); NXDOMAIN without one. */
function reply(query: Buffer, q: { type: number; end: number }, rdata: Buffer | undefined): Buffer {
  const header = Buffer.alloc(12);
  query.copy(header, 0, 0, 2);
  // QR, opcode 0, RD copied, RA; RCODE 0 or 3 (NXDOMAIN)
  header.writeUInt16BE(0x8000 | (query.readUInt16BE(2) & 0x0100) | 0x0080 | (rdata ? 0 : 3), 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(rdata ? 1 : 0, 6);
  const parts = [header, query.subarray(12, q.end)];
  if (rdata) {
    const rr = Buffer.alloc(10);
    rr.writeUInt16BE(q.type, 0);
    rr.writeUInt16BE(1, 2);
    rr.writeUInt32BE(300, 4);
    rr.writeUInt16BE(rdata.length, 8);
    // the owner is the question's name, by a pointer to offset 12 (RFC 1035 4.1.4)
    parts.push(Buffer.from([0xc0, 12]), rr, rdata);
  }
  return Buffer.concat(parts);
}

let closeAll: (() => Promise<void>) | undefined;
after(async () => {
  await closeAll?.();
});

test("the client's verified host name is looked up once per session and given to the spam check for every message of it", async () => {
  const questions: string[] = [];
  const dns = dgram.createSocket("udp4");
  dns.on("message", (msg, from) => {
    const q = question(msg);
    questions.push(`${q.type === 12 ? "PTR" : q.type === 1 ? "A" : q.type} ${q.name}`);
    const rdata =
      q.type === 12 && q.name === PTR_NAME
        ? encodeName(CLIENT_NAME)
        : q.type === 1 && q.name === CLIENT_NAME
          ? Buffer.from(CLIENT_IP.split(".").map(Number))
          : undefined;
    dns.send(reply(msg, q, rdata), from.port, from.address);
  });
  await new Promise<void>((resolve) => dns.bind(0, "127.0.0.1", resolve));
  const dnsPort = (dns.address() as AddressInfo).port;

  const dataDir = mkdtempSync(join(tmpdir(), "maild-hostname-"));
  const tls = await makeTestTls(join(dataDir, "tls"), ["mx.example.org"]);
  const config = validateMaildConfig({
    hostname: "mx.example.org",
    dataDir,
    tls: { certPath: tls.certPath, keyPath: tls.keyPath },
    domains: [{ name: "example.org" }],
    users: [{ address: "alice@example.org", passwordHash: TEST_PASSWORD_HASH }],
    aliases: [],
    dnsServers: [`127.0.0.1:${dnsPort}`],
  });
  const log = createLogger(() => undefined);
  const store = new LocalStore(dataDir, () => config.hostname);
  await store.init();
  const noQueue: RemoteQueue = {
    accepting: false,
    enqueue: () => Promise.reject(new Error("no remote recipients in this test")),
    enqueueMessage: () => Promise.reject(new Error("no remote recipients in this test")),
    commit: () => undefined,
    discard: () => Promise.resolve(),
    size: () => 0,
  };
  const scanned: (string | undefined)[] = [];
  // Only what InboundSmtp reads of a verdict (spam-check.ts SpamCheck.check): an inbox verdict.
  const spam = {
    check: async (_service: string, envelope: { hostname?: string }) => {
      scanned.push(envelope.hostname);
      return {
        outcome: { kind: "inbox" },
        headers: "",
        removeHeaders: [],
        auth: { spf: "none", dkim: "none", dmarc: "none", arc: "none" },
        scanMs: 0,
        symbols: {},
      };
    },
  } as unknown as SpamCheck;
  const router = new Router(config);
  const smtp = new InboundSmtp({
    config: () => config,
    router: () => router,
    tls: () => loadTls(tls),
    spam,
    accept: new MessageAcceptor(store, noQueue, log, () => config.limits),
    log,
  });
  const [bound] = await smtp.listen([{ host: "127.0.0.1", port: 0 }]);
  closeAll = async () => {
    await smtp.close(1000);
    dns.close();
  };

  const session = async (messages: number): Promise<void> => {
    const conn = new SMTPConnection({ host: "127.0.0.1", port: bound.port, localAddress: CLIENT_IP, ignoreTLS: true, name: CLIENT_NAME });
    await new Promise<void>((resolve, reject) => {
      conn.once("error", reject);
      conn.connect(() => resolve());
    });
    for (let i = 0; i < messages; i++) {
      await new Promise<void>((resolve, reject) =>
        conn.send({ from: "someone@example.net", to: ["alice@example.org"] }, `Subject: ${i}\r\n\r\nbody ${i}\r\n`, (err) =>
          err ? reject(err) : resolve(),
        ),
      );
    }
    conn.quit();
    await new Promise((resolve) => conn.once("end", resolve));
  };
  await session(3);
  assert.deepEqual(scanned, [CLIENT_NAME, CLIENT_NAME, CLIENT_NAME]);
  assert.deepEqual(questions, [`PTR ${PTR_NAME}`, `A ${CLIENT_NAME}`], "one lookup for the three messages of a session");
  await session(1);
  assert.deepEqual(scanned, [CLIENT_NAME, CLIENT_NAME, CLIENT_NAME, CLIENT_NAME]);
  assert.deepEqual(questions, [`PTR ${PTR_NAME}`, `A ${CLIENT_NAME}`, `PTR ${PTR_NAME}`, `A ${CLIENT_NAME}`], "a new session looks again");
});
