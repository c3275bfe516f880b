// Receiving mail on port 25 (RFC 5321) with smtp-server: STARTTLS, recipient policy at RCPT,
// message checks after DATA, then durable delivery before the 250.
import { pipeline } from "node:stream/promises";
import { SMTPServer, type SMTPServerSession, type SMTPServerDataStream, type SMTPServerAddress } from "smtp-server";
import type { DNSResolver } from "mailauth";
import type { MaildConfig, ListenEndpoint } from "./config";
import type { Logger } from "./log";
import { metrics } from "./metrics";
import { Router, mailboxKey, type Mailbox } from "./router";
import { RateLimiter } from "./client-limits";
import { SmtpListeners, SHUTTING_DOWN, type BoundEndpoint } from "./smtp-listener";
import { BareNewlineGuard } from "./bare-newline";
import { ByteLimit } from "./byte-limit";
import { LocalStore, newMessageId } from "./delivery";
import { authenticateStream, prefetchSpf, transactionResolver } from "./message-auth";
import { ReceivedData } from "./received-data";
import { receivedHeader, isForgedAuthResults } from "./trace-headers";
import { smtpError, useOwnEnhancedStatusCodes } from "./smtp-replies";
import type { RemoteQueue } from "./remote-queue";
import type { TlsMaterial } from "./tls";

export interface InboundDeps {
  config: () => MaildConfig;
  router: () => Router;
  tls: () => TlsMaterial;
  resolver: () => DNSResolver;
  store: LocalStore;
  queue: RemoteQueue;
  log: Logger;
}

/** What one MAIL transaction has accepted so far. */
interface Transaction {
  mailboxes: Map<string, Mailbox>;
  remote: Set<string>;
  rcpts: number;
  /** this transaction's DNS answers, shared by the early SPF check and the checks after DATA */
  resolver: DNSResolver;
}

/** DATA up to this size is held in memory while it is checked; larger DATA goes to a spool file. */
const IN_MEMORY_DATA_BYTES = 128 * 1024;

function reject(reason: string, code: number, text: string): Error {
  metrics.rejected.inc({ service: "smtp", reason });
  return smtpError(code, text);
}

export class InboundSmtp {
  private readonly listeners: SmtpListeners;
  private readonly rate: RateLimiter;
  private readonly txns = new Map<string, Transaction>();

  constructor(private readonly deps: InboundDeps) {
    useOwnEnhancedStatusCodes();
    const limits = () => deps.config().limits;
    this.listeners = new SmtpListeners("smtp", deps.log, deps.tls, () => ({
      perIp: limits().maxConnectionsPerIp,
      total: limits().maxConnections,
    }));
    this.rate = new RateLimiter(() => limits().maxMessagesPerIpPerMinute);
  }

  listen(endpoints: ListenEndpoint[]): Promise<BoundEndpoint[]> {
    return this.listeners.listen(endpoints, () => this.createServer());
  }

  reloadTls(): void {
    this.listeners.reloadTls();
  }

  close(timeoutMs: number): Promise<void> {
    return this.listeners.close(timeoutMs);
  }

  private get closing(): boolean {
    return this.listeners.closing;
  }

  private createServer(): SMTPServer {
    const cfg = this.deps.config();
    const { key, cert } = this.deps.tls();
    return new SMTPServer({
      name: cfg.hostname,
      banner: "ESMTP maild",
      key,
      cert,
      // RFC 1870: advertise the limit; we refuse oversized messages ourselves (see onData).
      size: cfg.limits.maxMessageBytes,
      // Port 25 is for mail to us; authenticated sending is submission's (587/465).
      disabledCommands: ["AUTH"],
      authOptional: true,
      disableReverseLookup: true,
      logger: false,
      onConnect: (session, cb) => this.listeners.onConnect(session, cb),
      onMailFrom: (address, session, cb) => this.onMailFrom(address, session, cb),
      onRcptTo: (address, session, cb) => this.onRcptTo(address, session, cb),
      onData: (stream, session, cb) => this.listeners.data(this.onData(stream, session), cb),
      onClose: (session) => {
        this.txns.delete(session.id);
        this.listeners.onClose(session);
      },
    });
  }

  private onMailFrom(_address: SMTPServerAddress, session: SMTPServerSession, cb: (err?: Error | null) => void): void {
    if (this.closing) return cb(reject("shutting-down", 421, SHUTTING_DOWN));
    if (!this.rate.take(session.remoteAddress)) {
      this.deps.log.warn("smtp.rate_limited", { session: session.id, ip: session.remoteAddress });
      return cb(reject("rate-limit", 450, "4.7.1 Too many messages from your address, try again later"));
    }
    this.txns.set(session.id, { mailboxes: new Map(), remote: new Set(), rcpts: 0, resolver: transactionResolver(this.deps.resolver()) });
    cb();
  }

  private onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, cb: (err?: Error | null) => void): void {
    const txn = this.txns.get(session.id);
    if (!txn) return cb(smtpError(503, "5.5.1 MAIL first"));
    if (txn.rcpts >= this.deps.config().limits.maxRecipients) {
      // RFC 5321 4.5.3.1.10: 452 for too many recipients; the client sends the rest later.
      return cb(reject("too-many-recipients", 452, "4.5.3 Too many recipients"));
    }
    const route = this.deps.router().route(address.address);
    const fields = { session: session.id, ip: session.remoteAddress, rcpt: address.address };
    switch (route.kind) {
      case "bad-address":
        return cb(reject("bad-address", 501, "5.1.3 Bad recipient address syntax"));
      case "relay-denied":
        this.deps.log.info("smtp.relay_denied", fields);
        return cb(reject("relay-denied", 554, "5.7.1 Relay access denied"));
      case "unknown-user":
        this.deps.log.info("smtp.unknown_user", fields);
        return cb(reject("unknown-user", 550, "5.1.1 Recipient address rejected: user unknown"));
      case "accept":
        if (route.remote.length > 0 && !this.deps.queue.accepting) {
          this.deps.log.warn("smtp.forward_unavailable", fields);
          return cb(reject("forward-unavailable", 451, "4.3.2 Forwarding to external addresses is not available, try again later"));
        }
        // The first recipient we accept starts SPF, so its DNS lookups overlap the DATA transfer;
        // a transaction with no valid recipient causes none.
        if (txn.rcpts === 0) {
          prefetchSpf({
            clientIp: session.remoteAddress,
            helo: session.hostNameAppearsAs || "",
            sender: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
            hostname: this.deps.config().hostname,
            resolver: txn.resolver,
          });
        }
        txn.rcpts++;
        for (const mb of route.mailboxes) txn.mailboxes.set(mailboxKey(mb), mb);
        for (const r of route.remote) txn.remote.add(r);
        return cb();
    }
  }

  private async onData(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
    const cfg = this.deps.config();
    const txn = this.txns.get(session.id);
    this.txns.delete(session.id);
    const id = newMessageId();
    const rawPath = this.deps.store.rawPath(id);
    const guard = new BareNewlineGuard();
    const limit = new ByteLimit(cfg.limits.maxMessageBytes);
    const fields = { session: session.id, ip: session.remoteAddress, id };
    const sender = session.envelope.mailFrom ? session.envelope.mailFrom.address : "";
    const helo = session.hostNameAppearsAs || "";
    // SPF, DKIM, DMARC and ARC run on the DATA as it arrives (what passes the size limit), so
    // the message is never read back; a message refused below just leaves its verdict unused.
    const auth = authenticateStream({
      clientIp: session.remoteAddress,
      helo,
      sender,
      hostname: cfg.hostname,
      resolver: txn?.resolver ?? this.deps.resolver(),
    });
    const data = new ReceivedData(rawPath, IN_MEMORY_DATA_BYTES);
    try {
      await pipeline(stream, guard, limit, auth.tap, data);
    } catch (e) {
      await this.deps.store.discard(id);
      this.deps.log.info("smtp.data_aborted", { ...fields, error: (e as Error).message });
      throw reject("data-aborted", 451, "4.3.0 Message not received in full");
    }
    let enqueued = false;
    try {
      if (!txn || (txn.mailboxes.size === 0 && txn.remote.size === 0)) throw smtpError(503, "5.5.1 No valid recipients");
      if (limit.exceeded || stream.sizeExceeded) {
        this.deps.log.info("smtp.too_big", { ...fields, bytes: limit.bytes });
        throw reject("size", 552, `5.3.4 Message exceeds the size limit of ${cfg.limits.maxMessageBytes} bytes`);
      }
      if (guard.detector.found) {
        this.deps.log.warn("smtp.bare_newline", { ...fields, kind: guard.detector.found });
        throw reject(
          "bare-newline",
          550,
          `5.5.2 Message refused: bare ${guard.detector.found === "bare-lf" ? "<LF>" : "<CR>"} received; lines must end in <CR><LF> (RFC 5321 2.3.8)`,
        );
      }
      let verdict;
      const t0 = performance.now();
      try {
        verdict = await auth.verdict;
      } catch (e) {
        this.deps.log.error("smtp.auth_error", { ...fields, error: (e as Error).message });
        throw reject("auth-error", 451, "4.3.0 Temporary error checking the message, try again later");
      }
      const authMs = Math.round(performance.now() - t0);
      const verdictFields = { spf: verdict.spf, dkim: verdict.dkim, dmarc: verdict.dmarc, arc: verdict.arc };
      if (verdict.reject) {
        this.deps.log.info("smtp.dmarc_reject", { ...fields, ...verdictFields });
        throw reject("dmarc", verdict.reject.code, verdict.reject.message);
      }
      const tls =
        session.secure && session.tlsOptions
          ? { version: session.tlsOptions.version, cipher: session.tlsOptions.standardName || session.tlsOptions.name }
          : undefined;
      const received = receivedHeader({
        helo,
        clientIp: session.remoteAddress,
        hostname: cfg.hostname,
        protocol: session.secure ? "ESMTPS" : "ESMTP",
        ...(tls ? { tls } : {}),
        id,
        date: new Date(),
      });
      const mailboxes = [...txn.mailboxes.values()];
      const remote = [...txn.remote];
      const t1 = performance.now();
      const { size } = await this.deps.store.store({
        id,
        rawPath,
        ...(data.held ? { held: data.held } : {}),
        prepend: verdict.headers + received,
        mailboxes,
        dropHeader: (f) => isForgedAuthResults(f, cfg.hostname),
        ...(remote.length > 0
          ? {
              beforeCommit: async (messagePath: string) => {
                await this.deps.queue.enqueue({ id, messagePath, sender, recipients: remote });
                enqueued = true;
              },
            }
          : {}),
      });
      const storeMs = Math.round(performance.now() - t1);
      if (remote.length > 0) this.deps.queue.commit(id);
      metrics.accepted.inc({ service: "smtp" });
      metrics.delivered.inc({}, mailboxes.length);
      this.deps.log.info("smtp.accepted", {
        ...fields,
        size,
        from: sender,
        mailboxes: mailboxes.map(mailboxKey),
        remote: remote.length,
        ...verdictFields,
        authMs,
        storeMs,
      });
      return `Ok: queued as ${id}`;
    } catch (e) {
      await this.deps.store.discard(id);
      // enqueued but the local commit failed: not acknowledged, so the queue must not send it
      if (enqueued)
        await this.deps.queue.discard(id).catch((err: Error) => this.deps.log.error("queue.discard_failed", { id, error: err.message }));
      if ((e as { responseCode?: number }).responseCode) throw e;
      this.deps.log.error("smtp.store_error", { ...fields, error: (e as Error).message });
      throw reject("store-error", 451, "4.3.0 Local error storing the message, try again later");
    }
  }
}
