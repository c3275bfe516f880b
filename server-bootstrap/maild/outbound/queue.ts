// The durable outbound queue: it keeps every message for remote recipients on disk (spool.ts)
// until each recipient is delivered or failed and the sender has been told about failures; it
// decides when to try (schedule.ts), hands one attempt per recipient domain to the transport,
// and sends delay and failure notices (dsn.ts) through `bounce`.
//
// Life of a message id I:
//   E. enqueue (inside LocalStore.store's beforeCommit, before the client's 250): Q1 of
//      spool.ts makes I durable; I is not committed and nothing is sent. enqueueMessage (a
//      message with no local mailbox, delivery.ts protocol C): Q1' makes I durable, which is
//      the message's commit point; the caller commits I once it resolves.
//   C. commit(I) after delivery.ts's commit point: from now on I may be sent. A message found on
//      disk at start is committed: recovery (recoverSpool) has already discarded those that were not.
//   A. an attempt: every pending recipient is durably marked in flight (the attempt marker),
//      then the transport gets one call per domain, in parallel; each call's results are
//      durably recorded as soon as they are known, before anything that depends on them. When
//      the results leave nothing to do (D follows at once), the removal is their record.
//   N. notices, only from durable state: failed recipients not yet reported get a failure DSN;
//      once the message is delayNoticeAfterSeconds old with recipients still pending, one delay
//      DSN. A flag is recorded after `bounce` has taken the DSN. The null sender gets no DSN ever
//      (RFC 5321 4.5.5, 6.1: no notice about a notice), nor does a sender nobody verified
//      (reverse-path.ts): their failures are logged and dropped. A DSN `bounce` cannot take is
//      not a reason to keep the message for ever: one it refuses for good (UndeliverableNotice:
//      no such local address, a stale SRS address) is dropped and logged at once, and one it keeps
//      failing to take is dropped and logged NOTICE_GIVE_UP_MS after the first failure (RFC 3461
//      6.2 and RFC 5321 6.1 forbid a notice about the notice; Postfix discards such a "double
//      bounce" with its default notify_classes).
//   X. past expireAfterSeconds the pending recipients are failed (Status 4.4.7) and reported.
//   D. when no recipient is pending and every failure is reported, I is removed (spool Q3).
//
// Why nothing is lost: I is on disk before the 250 (E). A recipient leaves "pending" only through
// a durable record of a final answer (A) or expiry (X), and I is removed only when nothing is
// pending and every failure has been handed to `bounce` with that durably noted (N, D). A crash
// anywhere leaves an envelope from which start() carries on.
// Why nothing is sent twice, except in one window: a recipient whose result is recorded is
// never tried again. The window is between the remote server's 250 and our record of it
// (RFC 1047): a crash there leaves the recipient pending, and the retry may deliver a second copy.
// Losing the message would be worse, so we retry; we keep the window small (the record follows
// each reply at once) and make it visible: such recipients are still marked in flight at start
// and are logged as `queue.possible_duplicate`. The same holds for a notice: a crash after
// `bounce` took it but before its flag is durable sends it again.
// Durable writes per message, in the common case (one recipient, delivered at the first try):
// Q1 (the link and the new envelope: one fsync of the file and one of the directory, together),
// the attempt marker (file, then directory), the removal (directory). The record of the 250 is
// the removal: writing the envelope with "delivered" first and then removing it would make the
// same fact durable twice.
// A crash before the removal is durable finds the marker, as a crash before the record would
// have: the recipient is retried and logged as a possible duplicate; nothing is lost.
import type { MaildConfig, OutboundConfig } from "../config";
import type { Logger } from "../log";
import { metrics } from "../metrics";
import type { QueueEntry, RemoteQueue } from "../remote-queue";
import { buildDsn, type DsnRecipient } from "./dsn";
import { delayNoticeAt, expiresAt, isFinished, nextWake, notifiesSender, retryDelayMs, unreportedFailures } from "./schedule";
import { Spool, type Envelope, type RecipientState } from "./spool";
import type { DeliveryAttempt, RecipientResult, Transport } from "./types";
import { WakeOrder } from "./wake-order";

export interface OutboundQueueDeps {
  /** the queue lives in `<dataDir>/queue/` */
  dataDir: string;
  /** read at each use: `outbound` (schedule, concurrency) and `hostname` (DSNs) follow reloads */
  config: () => MaildConfig;
  transport: Transport;
  log: Logger;
  /** ms since the epoch; tests move it by hand */
  now?: () => number;
  /**
   * Takes a DSN for `recipient` (the original sender, never ""): the daemon delivers it locally
   * or queues it with the null sender. Resolves once the DSN is durably accepted; rejects with
   * UndeliverableNotice when it never can be.
   */
  bounce: (dsn: { recipient: string; message: Buffer }) => Promise<void>;
}

export interface QueueSnapshotEntry {
  id: string;
  /** ms since the epoch */
  arrival: number;
  pending: { address: string; lastDiagnostic?: string; lastAt?: number }[];
}

/** `bounce` can never deliver this notice (no such local address, a stale SRS address): it is dropped. */
export class UndeliverableNotice extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UndeliverableNotice";
  }
}

/** A notice `bounce` has kept failing to take for this long is dropped (see N above). */
export const NOTICE_GIVE_UP_MS = 24 * 3600 * 1000;

interface Entry {
  env: Envelope;
  committed: boolean;
  /** the work (attempt, notices, removal) running on it now */
  busy?: Promise<void>;
  /** ms: a notice whose `bounce` failed is not tried again before then (kept in memory only) */
  noticeRetryAt: number;
  /** an envelope write that has not started yet: later changes join it (see save) */
  queuedWrite?: Promise<void>;
  lastWrite: Promise<void>;
  /** the last write failed, so the disk may lag behind `env` */
  unsaved: boolean;
}

// setTimeout's longest delay; a later wake is re-armed when this one fires.
const MAX_TIMER_MS = 2 ** 31 - 1;

export class OutboundQueue implements RemoteQueue {
  private readonly spool: Spool;
  private readonly entries = new Map<string, Entry>();
  private readonly running = new Set<Promise<void>>();
  /** committed messages not being worked on, by when they next need work */
  private readonly wakes = new WakeOrder();
  /** the outbound config the wake times were computed with; a reload recomputes them */
  private wakesFor?: OutboundConfig;
  private readonly now: () => number;
  private started = false;
  private stopping = false;
  private timer?: NodeJS.Timeout;

  constructor(private readonly deps: OutboundQueueDeps) {
    this.spool = new Spool(deps.dataDir);
    this.now = deps.now ?? Date.now;
  }

  get accepting(): boolean {
    return this.started && !this.stopping;
  }

  size(): number {
    return this.entries.size;
  }

  /** What waits, for monitoring: each committed message's arrival and its pending recipients' last result. */
  snapshot(): QueueSnapshotEntry[] {
    return [...this.entries.values()]
      .filter((e) => e.committed)
      .map((e) => ({
        id: e.env.id,
        arrival: e.env.arrival,
        pending: e.env.recipients
          .filter((r) => r.state === "pending")
          .map((r) => ({ address: r.address, ...(r.last ? { lastDiagnostic: r.last.diagnostic, lastAt: r.last.at } : {}) })),
      }));
  }

  /**
   * Loads the queue from disk and starts working on it. Everything on disk is taken as
   * committed, so call this after recoverSpool has discarded the entries that were not.
   */
  async start(): Promise<void> {
    if (this.started) throw new Error("outbound queue: start() called twice");
    await this.spool.init();
    const scan = await this.spool.scan();
    for (const id of scan.orphanMessages) this.deps.log.warn("queue.orphan_message", { id, action: "deleted" });
    for (const id of scan.missingMessages) this.deps.log.error("queue.message_missing", { id, action: "envelope deleted" });
    for (const { id, error } of scan.unreadable) this.deps.log.error("queue.envelope_unreadable", { id, error, action: "left in place" });
    let possibleDuplicates = 0;
    for (const env of scan.envelopes.sort((a, b) => a.arrival - b.arrival)) {
      const inFlight = env.recipients.filter((r) => r.inFlight);
      if (inFlight.length > 0) {
        // Died between an attempt marker and the record of its result: the remote side may have
        // the message already. The retry is the safe side of RFC 1047's window; say so.
        this.deps.log.warn("queue.possible_duplicate", { id: env.id, recipients: inFlight.map((r) => r.address), attempt: env.attempts });
        possibleDuplicates += inFlight.length;
        // On disk the flags stay until the envelope's next write: a crash before it logs them again.
        for (const r of inFlight) r.inFlight = false;
      }
      const e: Entry = { env, committed: true, noticeRetryAt: 0, lastWrite: Promise.resolve(), unsaved: false };
      this.entries.set(env.id, e);
      this.schedule(e);
    }
    this.started = true;
    metrics.queueSize.set(this.entries.size);
    this.deps.log.info("queue.loaded", {
      messages: this.entries.size,
      pending: scan.envelopes.reduce((n, e) => n + e.recipients.filter((r) => r.state === "pending").length, 0),
      possibleDuplicates,
    });
    this.startDue();
  }

  /** Stops starting work and waits for the attempts under way, at most `timeoutMs`; true if all ended. */
  async stop(timeoutMs = this.deps.config().shutdownTimeoutMs): Promise<boolean> {
    this.stopping = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    const deadline = Date.now() + timeoutMs;
    const ended =
      this.running.size === 0 ||
      (await within(
        Promise.all(this.running).then(() => true),
        timeoutMs,
        false,
      ));
    // What is cut off here is still marked in flight on disk: the next start logs and retries it.
    if (!ended) this.deps.log.warn("queue.stop_timeout", { inFlight: this.running.size, timeoutMs });
    // connections the transport keeps open between attempts (QUIT), in what is left of the time
    const closing = this.deps.transport
      .close?.()
      .catch((err: Error) => this.deps.log.warn("queue.transport_close", { error: err.message }));
    if (closing) await within(closing, Math.max(0, deadline - Date.now()), undefined);
    await this.spool.close();
    return ended;
  }

  /** Spool Q1: durable before it resolves. Not sent before commit(entry.id). */
  async enqueue(entry: QueueEntry): Promise<void> {
    await this.add(entry, (env) =>
      this.spool.add(entry.id, entry.messagePath, (size) => {
        env.size = size;
        return env;
      }),
    );
  }

  async enqueueMessage(entry: Omit<QueueEntry, "messagePath">, message: Buffer): Promise<void> {
    await this.add(entry, (env) =>
      this.spool.addMessage(entry.id, message, (size) => {
        env.size = size;
        return env;
      }),
    );
  }

  private async add(entry: Omit<QueueEntry, "messagePath">, write: (env: Envelope) => Promise<void>): Promise<void> {
    if (!this.accepting)
      throw new Error(`outbound queue not accepting (${this.started ? "stopping" : "not started"}): cannot queue ${entry.id}`);
    if (this.entries.has(entry.id)) throw new Error(`outbound queue: ${entry.id} is queued already`);
    // one result per address and attempt: a recipient given twice is sent to once
    const recipients = [...new Set(entry.recipients)];
    if (recipients.length === 0) throw new Error(`outbound queue: ${entry.id} has no recipients`);
    const arrival = this.now();
    const env: Envelope = {
      version: 1,
      id: entry.id,
      sender: entry.sender,
      size: 0,
      arrival,
      attempts: 0,
      nextAttempt: arrival,
      delayNoticeSent: false,
      ...(entry.notifySender === false ? { notify: false as const } : {}),
      recipients: recipients.map((address) => ({ address, state: "pending", inFlight: false, reported: false, expired: false })),
    };
    // in the map at once (uncommitted, so never worked on) to claim the id
    this.entries.set(entry.id, { env, committed: false, noticeRetryAt: 0, lastWrite: Promise.resolve(), unsaved: false });
    try {
      // Not acknowledged when it fails: spool.add and addMessage take back what they made.
      // Anything left over is garbage to the next start's scan.
      await write(env);
    } catch (e) {
      this.entries.delete(entry.id);
      throw e;
    }
    metrics.queueSize.set(this.entries.size);
  }

  commit(id: string): void {
    const e = this.entries.get(id);
    if (!e) {
      this.deps.log.warn("queue.commit_unknown", { id });
      return;
    }
    e.committed = true;
    this.schedule(e);
    this.startDue();
  }

  /** Removes an entry that was never committed (also before start(), for crash recovery). */
  async discard(id: string): Promise<void> {
    const e = this.entries.get(id);
    if (e?.committed) throw new Error(`outbound queue: ${id} is committed and cannot be discarded`);
    this.entries.delete(id);
    this.wakes.delete(id);
    // recovery runs before start(), possibly before the queue directory was ever made
    await this.spool.init();
    await this.spool.remove(id);
    metrics.queueSize.set(this.entries.size);
  }

  /**
   * Works on every message that is due now and waits until nothing is running (what becomes due
   * meanwhile included). The timer does the same without waiting; tests and a flush command call this.
   */
  async runDue(): Promise<void> {
    for (;;) {
      this.startDue();
      if (this.running.size === 0) return;
      await Promise.all(this.running);
    }
  }

  /** Puts an idle committed entry in the wake order at the time it next needs work. */
  private schedule(e: Entry): void {
    if (!e.committed || e.busy || !this.entries.has(e.env.id)) return;
    this.wakes.set(e.env.id, nextWake(e.env, this.deps.config().outbound, e.noticeRetryAt));
  }

  private startDue(): void {
    if (!this.started || this.stopping) return;
    const now = this.now();
    const cfg = this.deps.config().outbound;
    if (cfg !== this.wakesFor) {
      // a reload may move retries, delay notices and expiry: every idle entry's wake, once
      this.wakesFor = cfg;
      this.wakes.clear();
      for (const e of this.entries.values()) this.schedule(e);
    }
    // The transport limits connections; this bounds the messages in work (memory, open files).
    const limit = cfg.maxConnections;
    while (this.running.size < limit) {
      const id = this.wakes.popDue(now);
      if (id === undefined) break;
      const e = this.entries.get(id);
      if (!e || !e.committed || e.busy) continue;
      const run: Promise<void> = this.work(e).then(() => {
        e.busy = undefined;
        this.running.delete(run);
        this.schedule(e);
        this.startDue();
      });
      e.busy = run;
      this.running.add(run);
    }
    this.arm(now);
  }

  /** One timer, for the earliest wake of an idle message; none while all slots are busy (a slot freed calls startDue). */
  private arm(now: number): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const cfg = this.deps.config().outbound;
    if (this.running.size >= cfg.maxConnections) return;
    const next = this.wakes.peek();
    if (next === undefined || next.at === Infinity) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.startDue();
      },
      Math.min(MAX_TIMER_MS, Math.max(0, next.at - now)),
    );
  }

  private async work(e: Entry): Promise<void> {
    const env = e.env;
    const cfg = this.deps.config().outbound;
    try {
      let failed: RecipientState[] = [];
      if (env.recipients.some((r) => r.state === "pending")) {
        const now = this.now();
        if (now >= expiresAt(env, cfg)) failed = await this.expire(e);
        else if (now >= env.nextAttempt) failed = await this.attempt(e);
      }
      if (!notifiesSender(env) && failed.length > 0) {
        this.deps.log.info("queue.dsn_suppressed", {
          id: env.id,
          sender: env.sender,
          recipients: failed.map((r) => r.address),
          reason: env.sender === "" ? "null sender (RFC 5321 6.1)" : "sender not verified (no SPF or DKIM pass for its domain)",
        });
      }
      await this.notify(e);
      if (isFinished(env)) {
        await this.spool.remove(env.id);
        this.entries.delete(env.id);
        this.wakes.delete(env.id);
        metrics.queueSize.set(this.entries.size);
        this.deps.log.info("queue.done", {
          id: env.id,
          attempts: env.attempts,
          delivered: env.recipients.filter((r) => r.state === "delivered").length,
          failed: env.recipients.filter((r) => r.state === "failed").length,
        });
      }
    } catch (err) {
      // A write to disk, most likely: whatever this was is tried again later, not in a loop.
      const later = this.now() + retryDelayMs(Math.max(1, env.attempts), cfg);
      env.nextAttempt = Math.max(env.nextAttempt, later);
      e.noticeRetryAt = later;
      this.deps.log.error("queue.error", { id: env.id, error: (err as Error).message });
    }
  }

  /** Step A. Returns the recipients that failed in it. */
  private async attempt(e: Entry): Promise<RecipientState[]> {
    const env = e.env;
    const pending = env.recipients.filter((r) => r.state === "pending");
    env.attempts++;
    for (const r of pending) r.inFlight = true;
    // The attempt marker: durable before the transport sees the message (see the header).
    await this.save(e);
    const byDomain = new Map<string, RecipientState[]>();
    for (const r of pending) {
      const domain = r.address.slice(r.address.lastIndexOf("@") + 1).toLowerCase();
      byDomain.set(domain, [...(byDomain.get(domain) ?? []), r]);
    }
    // allSettled: the entry must stay busy until every domain's call has ended, or a new attempt
    // could send to a domain whose call (and delivery) is still under way
    const settled = await Promise.allSettled([...byDomain].map(([domain, rcpts]) => this.deliverDomain(e, domain, rcpts)));
    const failure = settled.find((s) => s.status === "rejected");
    if (failure) throw failure.reason;
    if (env.recipients.some((r) => r.state === "pending")) {
      env.nextAttempt = this.now() + retryDelayMs(env.attempts, this.deps.config().outbound);
      await this.save(e);
    }
    return pending.filter((r) => r.state === "failed");
  }

  private async deliverDomain(e: Entry, domain: string, rcpts: RecipientState[]): Promise<void> {
    const env = e.env;
    const attempt: DeliveryAttempt = {
      id: env.id,
      domain,
      sender: env.sender,
      recipients: rcpts.map((r) => r.address),
      messagePath: this.spool.messagePath(env.id),
      size: env.size,
    };
    let results: RecipientResult[];
    try {
      results = await this.deps.transport.deliver(attempt);
    } catch (err) {
      // The contract says deliver never rejects; if it does, nothing is known: try again later.
      this.deps.log.error("queue.transport_error", { id: env.id, domain, error: (err as Error).message });
      results = [];
    }
    const at = this.now();
    const byAddress = new Map(results.map((r) => [r.recipient, r]));
    for (const r of rcpts) {
      const result: RecipientResult = byAddress.get(r.address) ?? {
        recipient: r.address,
        status: "deferred",
        enhancedCode: "4.3.0",
        diagnostic: "no result from the transport",
        remoteReply: false,
      };
      r.inFlight = false;
      r.last = { ...result, at };
      if (result.status !== "deferred") r.state = result.status;
      this.deps.log.info("queue.result", {
        id: env.id,
        recipient: r.address,
        status: result.status,
        code: result.enhancedCode,
        diagnostic: result.diagnostic,
        mta: result.remoteMta,
        attempt: env.attempts,
      });
    }
    // Nothing left to send or report: the removal that follows at once (work, step D) records
    // these results. Until it is durable the disk says in flight, as it would until this save.
    if (isFinished(env)) {
      e.unsaved = true;
      return;
    }
    // Recorded at once: the window for a duplicate after a crash ends here.
    await this.save(e);
  }

  /** Step X. Returns the recipients it failed. */
  private async expire(e: Entry): Promise<RecipientState[]> {
    const pending = e.env.recipients.filter((r) => r.state === "pending");
    for (const r of pending) {
      r.state = "failed";
      r.expired = true;
    }
    this.deps.log.info("queue.expired", { id: e.env.id, recipients: pending.map((r) => r.address), attempts: e.env.attempts });
    await this.save(e);
    return pending;
  }

  /** Step N: at most one DSN per call, listing new failures and, when due, the delayed recipients. */
  private async notify(e: Entry): Promise<void> {
    const env = e.env;
    const now = this.now();
    if (now < e.noticeRetryAt) return;
    const cfg = this.deps.config();
    const failures = unreportedFailures(env);
    const delayAt = delayNoticeAt(env, cfg.outbound);
    const delayed = delayAt !== undefined && now >= delayAt ? env.recipients.filter((r) => r.state === "pending") : [];
    if (failures.length === 0 && delayed.length === 0) return;
    // Report only what is on disk: a failure must not be told before it is recorded.
    if (e.unsaved) await this.save(e);
    const willRetryUntil = new Date(expiresAt(env, cfg.outbound));
    const dsn = buildDsn({
      hostname: cfg.hostname,
      to: env.sender,
      queueId: env.id,
      arrivalDate: new Date(env.arrival),
      date: new Date(now),
      originalHeader: await this.spool.readHeader(env.id),
      recipients: [
        ...failures.map((r) => dsnRecipient(r, "failed", cfg.outbound.expireAfterSeconds)),
        ...delayed.map((r) => ({ ...dsnRecipient(r, "delayed", cfg.outbound.expireAfterSeconds), willRetryUntil })),
      ],
    });
    const fields = { id: env.id, to: env.sender, failed: failures.map((r) => r.address), delayed: delayed.map((r) => r.address) };
    try {
      await this.deps.bounce({ recipient: env.sender, message: dsn.message });
      this.deps.log.info("queue.dsn_sent", { ...fields, messageId: dsn.messageId });
    } catch (err) {
      const error = (err as Error).message;
      const failingSince = env.noticeFailingSince ?? now;
      if (!(err instanceof UndeliverableNotice) && now - failingSince < NOTICE_GIVE_UP_MS) {
        e.noticeRetryAt = now + retryDelayMs(1, cfg.outbound);
        this.deps.log.error("queue.dsn_failed", { ...fields, error });
        if (env.noticeFailingSince === undefined) {
          env.noticeFailingSince = now;
          await this.save(e);
        }
        return;
      }
      this.deps.log.warn("queue.dsn_dropped", {
        ...fields,
        error,
        reason: err instanceof UndeliverableNotice ? "undeliverable" : `failing since ${new Date(failingSince).toISOString()}`,
      });
    }
    for (const r of failures) r.reported = true;
    if (delayed.length > 0) env.delayNoticeSent = true;
    delete env.noticeFailingSince;
    await this.save(e);
  }

  /**
   * Writes the entry's envelope as it is when the write starts (spool Q3). A change made while a
   * write waits for the one before it joins that waiting write, so under many results per
   * message the writes stay few and every caller's change is durable when its promise resolves.
   */
  private save(e: Entry): Promise<void> {
    if (e.queuedWrite) return e.queuedWrite;
    const write = e.lastWrite
      .catch(() => undefined)
      .then(async () => {
        e.queuedWrite = undefined;
        e.unsaved = false;
        try {
          await this.spool.writeEnvelope(e.env);
        } catch (err) {
          e.unsaved = true;
          throw err;
        }
      });
    e.queuedWrite = write;
    e.lastWrite = write;
    return write;
  }
}

/** `promise`'s value, or `otherwise` once `ms` have passed. */
async function within<T>(promise: Promise<T>, ms: number, otherwise: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<T>((resolve) => (timer = setTimeout(() => resolve(otherwise), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** What the DSN says about one recipient, from its last recorded result. */
function dsnRecipient(r: RecipientState, action: "failed" | "delayed", expireAfterSeconds: number): DsnRecipient {
  const last = r.last;
  let status: string;
  let reason: string;
  if (action === "failed" && r.expired) {
    // RFC 3463 4.4.7: delivery time expired (a persistent transient failure)
    status = "4.4.7";
    reason = `gave up after ${duration(expireAfterSeconds)} of trying` + (last ? `; last error: ${describe(last)}` : "");
  } else if (action === "failed") {
    status = last?.enhancedCode ?? "5.0.0";
    reason = last ? describe(last) : "failed";
  } else {
    status = last?.enhancedCode.startsWith("4.") ? last.enhancedCode : "4.0.0";
    reason = last ? describe(last) : "not tried yet";
  }
  return {
    address: r.address,
    action,
    status,
    reason,
    ...(last?.remoteMta ? { remoteMta: last.remoteMta } : {}),
    ...(last?.remoteReply ? { smtpReply: last.diagnostic } : {}),
    ...(last ? { lastAttempt: new Date(last.at) } : {}),
  };
}

function describe(result: RecipientResult): string {
  return result.remoteReply && result.remoteMta ? `host ${result.remoteMta} said: ${result.diagnostic}` : result.diagnostic;
}

function duration(seconds: number): string {
  if (seconds % 86_400 === 0) return `${seconds / 86_400} day${seconds === 86_400 ? "" : "s"}`;
  if (seconds % 3600 === 0) return `${seconds / 3600} hour${seconds === 3600 ? "" : "s"}`;
  return `${Math.round(seconds / 60)} minutes`;
}
