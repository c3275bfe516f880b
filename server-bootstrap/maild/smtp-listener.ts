// What every SMTP service of maild (receiving on 25, submission on 587 and 465) shares: binding
// the listeners, connection limits and accounting, a new certificate without a restart, and the
// graceful close that lets a message in DATA finish.
import { SMTPServer, type SMTPServerAddress, type SMTPServerDataStream, type SMTPServerOptions, type SMTPServerSession } from "smtp-server";
import type { ListenEndpoint, MaildConfig } from "./config";
import type { Logger } from "./log";
import { metrics } from "./metrics";
import { ConnectionLimiter, RateLimiter } from "./client-limits";
import { smtpError, useOwnEnhancedStatusCodes } from "./smtp-replies";
import type { TlsMaterial } from "./tls";

export interface BoundEndpoint {
  host: string;
  port: number;
}

export const SHUTTING_DOWN = "4.3.2 Service shutting down, try again later";

export class SmtpListeners {
  private readonly servers: SMTPServer[] = [];
  private readonly connections: ConnectionLimiter;
  private readonly counted = new Set<string>();
  private inflight = 0;
  private idle: (() => void)[] = [];
  closing = false;

  constructor(
    /** "smtp" or "submission": the label on connection metrics and in logs */
    private readonly service: string,
    private readonly log: Logger,
    private readonly tls: () => TlsMaterial,
    limits: () => { perIp: number; total: number },
  ) {
    this.connections = new ConnectionLimiter(limits);
  }

  /** Binds one server per endpoint; `create` builds it (its options decide implicit TLS etc.). */
  async listen(endpoints: ListenEndpoint[], create: (ep: ListenEndpoint) => SMTPServer): Promise<BoundEndpoint[]> {
    const bound: BoundEndpoint[] = [];
    for (const ep of endpoints) {
      const server = create(ep);
      // smtp-server emits connection-level failures (a client that leaves during the TLS
      // handshake on 465, a reset socket) on the SMTPServer itself; unhandled, they end the process.
      server.on("error", (e: Error) => this.log.warn(`${this.service}.connection_error`, { error: e.message }));
      await new Promise<void>((resolve, reject) => {
        server.server.once("error", reject);
        server.listen(ep.port, ep.host, () => {
          server.server.off("error", reject);
          resolve();
        });
      });
      server.server.on("error", (e: Error) => this.log.error(`${this.service}.server_error`, { error: e.message }));
      const addr = server.server.address();
      bound.push({ host: ep.host, port: typeof addr === "object" && addr ? addr.port : ep.port });
      this.servers.push(server);
      this.log.info(`${this.service}.listening`, { host: ep.host, port: bound[bound.length - 1].port });
    }
    return bound;
  }

  /** New certificate for new TLS handshakes; open connections keep theirs. */
  reloadTls(): void {
    const { key, cert } = this.tls();
    for (const s of this.servers) s.updateSecureContext({ key, cert });
  }

  /** smtp-server's onConnect: refuses while closing or over a connection limit. */
  onConnect(session: SMTPServerSession, cb: (err?: Error | null) => void): void {
    metrics.connections.inc({ service: this.service });
    const ip = session.remoteAddress;
    if (this.closing) return cb(this.refuse("shutting-down", 421, SHUTTING_DOWN));
    const ok = this.connections.tryOpen(ip);
    if (ok !== true) {
      this.log.warn(`${this.service}.connection_refused`, { ip, limit: ok });
      return cb(
        this.refuse(ok === "per-ip" ? "connections-per-ip" : "connections-total", 421, "4.7.0 Too many connections, try again later"),
      );
    }
    this.counted.add(session.id);
    metrics.activeConnections.inc({ service: this.service });
    this.log.info(`${this.service}.connect`, { session: session.id, ip });
    cb();
  }

  /** smtp-server's onClose; true when the connection had been counted. */
  onClose(session: SMTPServerSession): void {
    if (this.counted.delete(session.id)) {
      this.connections.close(session.remoteAddress);
      metrics.activeConnections.dec({ service: this.service });
      this.log.info(`${this.service}.close`, { session: session.id, ip: session.remoteAddress, messages: session.transaction - 1 });
    }
  }

  refuse(reason: string, code: number, text: string): Error {
    metrics.rejected.inc({ service: this.service, reason });
    return smtpError(code, text);
  }

  /** Runs a DATA handler so that a graceful close waits for it; `cb` gets its reply. */
  data(work: Promise<string>, cb: (err: Error | null, message?: string) => void): void {
    this.inflight++;
    work
      .then(
        (msg) => cb(null, msg),
        (err: Error) => cb(err),
      )
      .finally(() => {
        // after the reply is queued, so a graceful close does not cut it off
        if (--this.inflight === 0) for (const r of this.idle.splice(0)) setImmediate(r);
      });
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
        c.send(421, SHUTTING_DOWN);
        c.close();
      }
    }
    await closed;
  }
}

export interface SmtpServiceDeps {
  config: () => MaildConfig;
  tls: () => TlsMaterial;
  log: Logger;
}

type Callback = (err?: Error | null) => void;

/**
 * An SMTP service of maild (receiving, submission) around smtp-server: its listeners, its
 * message rate limit, the open transaction of each session, and the server options they share.
 */
export abstract class SmtpService<Transaction> {
  protected readonly listeners: SmtpListeners;
  protected readonly rate: RateLimiter;
  protected readonly txns = new Map<string, Transaction>();

  constructor(
    service: string,
    private readonly base: SmtpServiceDeps,
  ) {
    useOwnEnhancedStatusCodes();
    const limits = () => base.config().limits;
    this.listeners = new SmtpListeners(service, base.log, base.tls, () => ({
      perIp: limits().maxConnectionsPerIp,
      total: limits().maxConnections,
    }));
    this.rate = new RateLimiter(() => limits().maxMessagesPerIpPerMinute);
  }

  reloadTls(): void {
    this.listeners.reloadTls();
  }

  close(timeoutMs: number): Promise<void> {
    return this.listeners.close(timeoutMs);
  }

  protected refuse(reason: string, code: number, text: string): Error {
    return this.listeners.refuse(reason, code, text);
  }

  /** An SMTPServer with the options every service shares, and the service's own on top. */
  protected createServer(own: SMTPServerOptions): SMTPServer {
    const cfg = this.base.config();
    const { key, cert } = this.base.tls();
    return new SMTPServer({
      name: cfg.hostname,
      key,
      cert,
      // RFC 1870: advertise the limit; oversized DATA is refused after it is read (accept.ts).
      size: cfg.limits.maxMessageBytes,
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
      ...own,
    });
  }

  protected abstract onMailFrom(address: SMTPServerAddress, session: SMTPServerSession, cb: Callback): void;
  protected abstract onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, cb: Callback): void;
  /** Resolves to the text of the 250 reply; rejects with the refusal. */
  protected abstract onData(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string>;
}
