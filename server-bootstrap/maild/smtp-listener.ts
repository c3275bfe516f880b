// What every SMTP service of maild (receiving on 25, submission on 587 and 465) shares: binding
// the listeners, connection limits and accounting, a new certificate without a restart, and the
// graceful close that lets a message in DATA finish.
import type { SMTPServer, SMTPServerSession } from "smtp-server";
import type { ListenEndpoint } from "./config";
import type { Logger } from "./log";
import { metrics } from "./metrics";
import { ConnectionLimiter } from "./client-limits";
import { smtpError } from "./smtp-replies";
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
