// Receiving mail on port 25 (RFC 5321) with smtp-server: STARTTLS, recipient policy at RCPT,
// message checks after DATA, then durable delivery before the 250.
import { pipeline } from "node:stream/promises";
import { SMTPServer, type SMTPServerSession, type SMTPServerDataStream, type SMTPServerAddress } from "smtp-server";
import type { DNSResolver } from "mailauth";
import type { MaildConfig, ListenEndpoint } from "./config";
import type { Logger } from "./log";
import { metrics } from "./metrics";
import { Router, mailboxKey, type Mailbox } from "./router";
import { ConnectionLimiter, RateLimiter } from "./limits";
import { BareNewlineGuard } from "./bare-newline";
import { ByteLimit } from "./byte-limit";
import { LocalStore, newMessageId } from "./delivery";
import { authenticateStream, prefetchSpf, transactionResolver } from "./message-auth";
import { ReceivedData } from "./received-data";
import { receivedHeader, isForgedAuthResults } from "./trace-headers";
import { smtpError, useOwnEnhancedStatusCodes } from "./smtp-replies";
import type { RemoteQueue } from "./queue";
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
  metrics.rejected.inc({ reason });
  return smtpError(code, text);
}

export class InboundSmtp {
  private readonly servers: SMTPServer[] = [];
  private readonly connections: ConnectionLimiter;
  private readonly rate: RateLimiter;
  private readonly txns = new Map<string, Transaction>();
  private readonly counted = new Set<string>();
  private closing = false;
  private inflight = 0;
  private idle: (() => void)[] = [];

  constructor(private readonly deps: InboundDeps) {
    useOwnEnhancedStatusCodes();
    const limits = () => deps.config().limits;
    this.connections = new ConnectionLimiter(() => ({ perIp: limits().maxConnectionsPerIp, total: limits().maxConnections }));
    this.rate = new RateLimiter(() => limits().maxMessagesPerIpPerMinute);
  }

  async listen(endpoints: ListenEndpoint[]): Promise<{ host: string; port: number }[]> {
    const bound: { host: string; port: number }[] = [];
    for (const ep of endpoints) {
      const server = this.createServer();
      await new Promise<void>((resolve, reject) => {
        server.server.once("error", reject);
        server.listen(ep.port, ep.host, () => {
          server.server.off("error", reject);
          resolve();
        });
      });
      server.server.on("error", (e: Error) => this.deps.log.error("smtp.server_error", { error: e.message }));
      const addr = server.server.address();
      bound.push({ host: ep.host, port: typeof addr === "object" && addr ? addr.port : ep.port });
      this.servers.push(server);
      this.deps.log.info("smtp.listening", { host: ep.host, port: bound[bound.length - 1].port });
    }
    return bound;
  }

  /** New certificate for new TLS handshakes; open connections keep theirs. */
  reloadTls(): void {
    const { key, cert } = this.deps.tls();
    for (const s of this.servers) s.updateSecureContext({ key, cert });
  }

  /**
   * Graceful stop: no new connections, and every open session gets 421 for its next command (smtp-server
   * does this once closing); a message already in DATA is still stored and answered with 250. Once no
   * message is in flight, the remaining (idle) sessions are closed; `timeoutMs` bounds the wait.
   */
  async close(timeoutMs: number): Promise<void> {
    this.closing = true;
    const closed = Promise.all(
      this.servers.map((s) => {
        (s.options as { closeTimeout?: number }).closeTimeout = Math.max(timeoutMs, 1);
        return new Promise<void>((resolve) => s.close(() => resolve()));
      }),
    );
    if (this.inflight > 0) await new Promise<void>((r) => this.idle.push(r));
    for (const s of this.servers) {
      for (const c of s.connections) {
        c.send(421, "4.3.2 Service shutting down, try again later");
        c.close();
      }
    }
    await closed;
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
      // Port 25 is for mail to us; authenticated sending (submission) is issue 5, elsewhere.
      disabledCommands: ["AUTH"],
      authOptional: true,
      disableReverseLookup: true,
      logger: false,
      onConnect: (session, cb) => this.onConnect(session, cb),
      onMailFrom: (address, session, cb) => this.onMailFrom(address, session, cb),
      onRcptTo: (address, session, cb) => this.onRcptTo(address, session, cb),
      onData: (stream, session, cb) => {
        this.inflight++;
        this.onData(stream, session)
          .then((msg) => cb(null, msg), (err: Error) => cb(err))
          .finally(() => {
            // after the reply is queued, so a graceful close does not cut it off
            if (--this.inflight === 0) for (const r of this.idle.splice(0)) setImmediate(r);
          });
      },
      onClose: (session) => this.onClose(session),
    });
  }

  private onConnect(session: SMTPServerSession, cb: (err?: Error | null) => void): void {
    metrics.connections.inc();
    const ip = session.remoteAddress;
    if (this.closing) return cb(reject("shutting-down", 421, "4.3.2 Service shutting down, try again later"));
    const ok = this.connections.tryOpen(ip);
    if (ok !== true) {
      this.deps.log.warn("smtp.connection_refused", { ip, limit: ok });
      return cb(reject(ok === "per-ip" ? "connections-per-ip" : "connections-total", 421, "4.7.0 Too many connections, try again later"));
    }
    this.counted.add(session.id);
    metrics.activeConnections.inc();
    this.deps.log.info("smtp.connect", { session: session.id, ip });
    cb();
  }

  private onClose(session: SMTPServerSession): void {
    this.txns.delete(session.id);
    if (this.counted.delete(session.id)) {
      this.connections.close(session.remoteAddress);
      metrics.activeConnections.dec();
      this.deps.log.info("smtp.close", { session: session.id, ip: session.remoteAddress, messages: session.transaction - 1 });
    }
  }

  private onMailFrom(_address: SMTPServerAddress, session: SMTPServerSession, cb: (err?: Error | null) => void): void {
    if (this.closing) return cb(reject("shutting-down", 421, "4.3.2 Service shutting down, try again later"));
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
            clientIp: session.remoteAddress, helo: session.hostNameAppearsAs || "",
            sender: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
            hostname: this.deps.config().hostname, resolver: txn.resolver,
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
      clientIp: session.remoteAddress, helo, sender, hostname: cfg.hostname, resolver: txn?.resolver ?? this.deps.resolver(),
    });
    const data = new ReceivedData(rawPath, IN_MEMORY_DATA_BYTES);
    try {
      await pipeline(stream, guard, limit, auth.tap, data);
    } catch (e) {
      await this.deps.store.discard(id);
      this.deps.log.info("smtp.data_aborted", { ...fields, error: (e as Error).message });
      throw reject("data-aborted", 451, "4.3.0 Message not received in full");
    }
    try {
      if (!txn || (txn.mailboxes.size === 0 && txn.remote.size === 0)) throw smtpError(503, "5.5.1 No valid recipients");
      if (limit.exceeded || stream.sizeExceeded) {
        this.deps.log.info("smtp.too_big", { ...fields, bytes: limit.bytes });
        throw reject("size", 552, `5.3.4 Message exceeds the size limit of ${cfg.limits.maxMessageBytes} bytes`);
      }
      if (guard.detector.found) {
        this.deps.log.warn("smtp.bare_newline", { ...fields, kind: guard.detector.found });
        throw reject("bare-newline", 550, `5.5.2 Message refused: bare ${guard.detector.found === "bare-lf" ? "<LF>" : "<CR>"} received; lines must end in <CR><LF> (RFC 5321 2.3.8)`);
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
      const tls = session.secure && session.tlsOptions ? { version: session.tlsOptions.version, cipher: session.tlsOptions.standardName || session.tlsOptions.name } : undefined;
      const received = receivedHeader({
        helo, clientIp: session.remoteAddress, hostname: cfg.hostname,
        protocol: session.secure ? "ESMTPS" : "ESMTP", ...(tls ? { tls } : {}), id, date: new Date(),
      });
      const mailboxes = [...txn.mailboxes.values()];
      const remote = [...txn.remote];
      const t1 = performance.now();
      const { size } = await this.deps.store.store({
        id, rawPath, ...(data.held ? { held: data.held } : {}), prepend: verdict.headers + received, mailboxes,
        dropHeader: (f) => isForgedAuthResults(f, cfg.hostname),
        ...(remote.length > 0
          ? { beforeCommit: (messagePath: string) => this.deps.queue.enqueue({ id, messagePath, sender, recipients: remote }) }
          : {}),
      });
      const storeMs = Math.round(performance.now() - t1);
      metrics.accepted.inc();
      metrics.delivered.inc({}, mailboxes.length);
      this.deps.log.info("smtp.accepted", { ...fields, size, from: sender, mailboxes: mailboxes.map(mailboxKey), remote: remote.length, ...verdictFields, authMs, storeMs });
      return `Ok: queued as ${id}`;
    } catch (e) {
      await this.deps.store.discard(id);
      if ((e as { responseCode?: number }).responseCode) throw e;
      this.deps.log.error("smtp.store_error", { ...fields, error: (e as Error).message });
      throw reject("store-error", 451, "4.3.0 Local error storing the message, try again later");
    }
  }
}
