// Fixtures for the outbound tests (dsn.test.ts, outbound-queue*.test.ts):
// - parseDsn reads a DSN back: the top-level message and each MIME part through mailparser, and
//   every field group of the message/delivery-status part as its own header block (so folding is
//   undone by mailparser too);
// - queueHarness runs an OutboundQueue on a temporary directory with a scripted Transport, a
//   clock the test moves, and `bounce` and the log recorded.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { simpleParser, type HeaderValue } from "mailparser";
import { validateMaildConfig, type MaildConfig, type OutboundConfig } from "../../server-bootstrap/maild/config";
import { newMessageId } from "../../server-bootstrap/maild/delivery";
import type { LogFields, Logger, LogLevel } from "../../server-bootstrap/maild/log";
import { OutboundQueue } from "../../server-bootstrap/maild/outbound/queue";
import type { Envelope } from "../../server-bootstrap/maild/outbound/spool";
import type { DeliveryAttempt, RecipientResult } from "../../server-bootstrap/maild/outbound/types";

export interface ParsedDsn {
  raw: string;
  headers: Map<string, HeaderValue>;
  subject: string;
  from: string;
  to: string;
  messageId: string;
  date: Date;
  contentType: { value: string; params: Record<string, string> };
  /** each part's Content-Type value, in order */
  partTypes: string[];
  text: string;
  /** the per-message group, then one map per recipient (field names lowercase) */
  perMessage: Map<string, string>;
  perRecipient: Map<string, string>[];
  /** the content of the text/rfc822-headers part, exactly */
  returnedHeader: string;
}

export async function parseDsn(message: Buffer): Promise<ParsedDsn> {
  const raw = message.toString("utf8");
  assert.doesNotMatch(raw, /[^\r]\n|\r[^\n]/, "every line ends in CRLF");
  const top = await simpleParser(message);
  const contentType = top.headers.get("content-type") as { value: string; params: Record<string, string> };
  const boundary = contentType.params.boundary;
  assert.ok(boundary, "multipart boundary");
  const body = raw.slice(raw.indexOf("\r\n\r\n") + 4);
  const close = body.indexOf(`\r\n--${boundary}--\r\n`);
  assert.ok(close > 0, "closing boundary");
  const parts = body
    .slice(0, close)
    .split(`--${boundary}\r\n`)
    .slice(1)
    .map((p, i, all) => (i < all.length - 1 ? p.slice(0, -2) : p));
  assert.equal(parts.length, 3, "three parts");
  const parsed = await Promise.all(parts.map((p) => simpleParser(p)));
  const partTypes = parsed.map((p) => (p.headers.get("content-type") as { value: string }).value);
  const statusBody = parts[1].slice(parts[1].indexOf("\r\n\r\n") + 4);
  const groups = statusBody.replace(/\r\n$/, "").split("\r\n\r\n");
  const fieldMaps = await Promise.all(
    groups.map(async (g) => {
      const h = await simpleParser(`${g}\r\n\r\n`);
      return new Map([...h.headers].map(([k, v]) => [k, String(v)]));
    }),
  );
  return {
    raw,
    headers: top.headers,
    subject: top.subject ?? "",
    from: top.from?.text ?? "",
    to: top.to && !Array.isArray(top.to) ? top.to.text : "",
    messageId: top.messageId ?? "",
    date: top.date ?? new Date(NaN),
    contentType,
    partTypes,
    text: parsed[0].text ?? "",
    perMessage: fieldMaps[0],
    perRecipient: fieldMaps.slice(1),
    returnedHeader: parts[2].slice(parts[2].indexOf("\r\n\r\n") + 4),
  };
}

export const T0 = Date.UTC(2025, 0, 6, 12, 0, 0);
export const MINUTE = 60_000;
export const HOUR = 3_600_000;

export const delivered = (recipient: string, mta = "mx.remote.test"): RecipientResult => ({
  recipient,
  status: "delivered",
  enhancedCode: "2.0.0",
  diagnostic: "250 2.0.0 Ok: queued as 4Xyz",
  remoteReply: true,
  remoteMta: mta,
});
export const deferred = (recipient: string, diagnostic = "421 4.4.1 Too busy, try later", mta = "mx.remote.test"): RecipientResult => ({
  recipient,
  status: "deferred",
  enhancedCode: diagnostic.split(" ")[1],
  diagnostic,
  remoteReply: true,
  remoteMta: mta,
});
export const failed = (
  recipient: string,
  diagnostic = `550 5.1.1 <${recipient}>: Recipient address rejected: User unknown`,
  mta = "mx.remote.test",
): RecipientResult => ({
  recipient,
  status: "failed",
  enhancedCode: diagnostic.split(" ")[1],
  diagnostic,
  remoteReply: true,
  remoteMta: mta,
});

export interface Call {
  attempt: DeliveryAttempt;
  /** the fake clock when the transport was called */
  at: number;
  /** the message file's content at that moment */
  data: string;
}

export interface LogLine {
  level: LogLevel;
  event: string;
  fields: LogFields;
}

export interface QueueHarness {
  queue: OutboundQueue;
  dataDir: string;
  clock: { t: number };
  /** what the transport answers; the default delivers everyone */
  respond: (attempt: DeliveryAttempt, call: number) => RecipientResult[] | Promise<RecipientResult[]>;
  calls: Call[];
  dsns: { recipient: string; message: Buffer }[];
  /** set to make `bounce` reject */
  bounceError?: Error;
  logs: LogLine[];
  events(name: string): LogFields[];
  /** queues a message as LocalStore does (an fsynced file, linked in by enqueue), commits it unless told not to */
  submit(opts: {
    sender?: string;
    recipients: string[];
    subject?: string;
    commit?: boolean;
    notifySender?: boolean;
    /** extra header fields, each ending in CRLF */
    header?: string;
  }): Promise<string>;
  /** the envelope as it is on disk */
  envelope(id: string): Envelope;
  /** names in <dataDir>/queue */
  files(): string[];
  /** another queue on the same directory and clock, as after a restart of the process */
  restart(): Promise<QueueHarness>;
}

export function outboundConfig(outbound: Partial<OutboundConfig> = {}): MaildConfig {
  return validateMaildConfig({
    hostname: "mx.example.org",
    dataDir: "/var/lib/maild",
    tls: { certPath: "/etc/maild/cert.pem", keyPath: "/etc/maild/key.pem" },
    domains: [{ name: "example.org" }],
    users: [{ address: "alice@example.org", passwordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo" }],
    aliases: [],
    shutdownTimeoutMs: 2000,
    outbound: {
      retryBaseSeconds: 60,
      retryMaxSeconds: 3600,
      delayNoticeAfterSeconds: 4 * 3600,
      expireAfterSeconds: 2 * 86_400,
      ...outbound,
    },
  });
}

const tempDirs: string[] = [];
process.once("exit", () => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

/** A directory removed when the test process exits. */
export function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "maild-queue-"));
  tempDirs.push(d);
  return d;
}

export async function queueHarness(
  outbound: Partial<OutboundConfig> = {},
  shared?: { dataDir: string; clock: { t: number } },
): Promise<QueueHarness> {
  const dataDir = shared?.dataDir ?? tempDir();
  const clock = shared?.clock ?? { t: T0 };
  const config = outboundConfig(outbound);
  const logs: LogLine[] = [];
  const log = (level: LogLevel, event: string, fields: LogFields = {}): void => void logs.push({ level, event, fields });
  const logger: Logger = { log, info: (e, f) => log("info", e, f), warn: (e, f) => log("warn", e, f), error: (e, f) => log("error", e, f) };
  const h: QueueHarness = {
    queue: undefined as unknown as OutboundQueue,
    dataDir,
    clock,
    logs,
    calls: [],
    dsns: [],
    respond: (a) => a.recipients.map((r) => delivered(r)),
    events: (name) => logs.filter((l) => l.event === name).map((l) => l.fields),
    async submit({ sender = "alice@example.org", recipients, subject = "test", commit = true, notifySender, header = "" }) {
      const id = newMessageId(clock.t);
      const path = join(dataDir, `${id}.incoming`);
      writeFileSync(
        path,
        `From: ${sender || "MAILER-DAEMON@example.org"}\r\nTo: ${recipients.join(", ")}\r\nSubject: ${subject}\r\n${header}\r\nbody of ${subject}\r\n`,
      );
      await h.queue.enqueue({ id, messagePath: path, sender, recipients, ...(notifySender !== undefined ? { notifySender } : {}) });
      if (commit) h.queue.commit(id);
      return id;
    },
    envelope: (id) => JSON.parse(readFileSync(join(dataDir, "queue", `${id}.json`), "utf8")) as Envelope,
    files: () => readdirSync(join(dataDir, "queue")).sort(),
    restart: () => queueHarness(outbound, { dataDir, clock }),
  };
  h.queue = new OutboundQueue({
    dataDir,
    config: () => config,
    log: logger,
    now: () => clock.t,
    transport: {
      deliver: async (attempt) => {
        h.calls.push({ attempt, at: clock.t, data: readFileSync(attempt.messagePath, "utf8") });
        return h.respond(attempt, h.calls.length);
      },
    },
    bounce: async (dsn) => {
      if (h.bounceError) throw h.bounceError;
      h.dsns.push(dsn);
    },
  });
  await h.queue.start();
  return h;
}
