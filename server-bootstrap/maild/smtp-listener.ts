// What every SMTP service of maild (receiving on 25, submission on 587 and 465) shares: binding
// the listeners, TLS settings, connection limits and accounting, the deadlines of a session and
// of its DATA, the budget of refused recipients, a new certificate without a restart, and the
// graceful close that lets a message in DATA finish.
import { constants as cryptoConstants } from "node:crypto";
import { SMTPServer, type SMTPServerAddress, type SMTPServerDataStream, type SMTPServerOptions, type SMTPServerSession } from "smtp-server";
import type { LimitsConfig, ListenEndpoint, MaildConfig } from "./config";
import type { Logger } from "./log";
import { metrics } from "./metrics";
import { ConnectionLimiter, RateLimiter } from "./client-limits";
import { clientKey } from "./client-key";
import { smtpError, useOwnEnhancedStatusCodes } from "./smtp-replies";
import type { TlsMaterial } from "./tls";

export interface BoundEndpoint {
  host: string;
  port: number;
}

export const SHUTTING_DOWN = "4.3.2 Service shutting down, try again later";

/**
 * TLS on every SMTP port. TLS 1.2 at least, also on 25: RFC 8996 forbids TLS 1.0 and 1.1 to
 * every protocol, and although RFC 7435 (opportunistic TLS) prefers any encryption to none, the
 * OpenSSL 3 under Node 24 refuses their handshakes at its default security level anyway, so a
 * lower floor would only be a claim. A client that cannot do TLS 1.2 still delivers in plain text
 * on 25 (postconf(5) smtp_tls_security_level "may": "When opportunistic TLS handshakes fail,
 * Postfix retries the connection with TLS disabled").
 * No renegotiation: Node allows client-initiated renegotiation (three per ten minutes), which
 * costs the server a handshake each time and serves no SMTP client (testssl: "potential DoS").
 */
export const SMTP_TLS_OPTIONS = {
  minVersion: "TLSv1.2",
  secureOptions: cryptoConstants.SSL_OP_NO_RENEGOTIATION,
} as const;

/** What the listeners keep about one open session. */
interface SessionState {
  client: string;
  /** the session deadline (sessionTimeoutSeconds after connect) */
  deadline: NodeJS.Timeout;
  /** a DATA handler is running: the session deadline lets it finish and closes the session after its reply */
  inData: boolean;
  expired: boolean;
  /** RCPT commands refused with 5xx since the last accepted message */
  failedRecipients: number;
}

export class SmtpListeners {
  private readonly servers: SMTPServer[] = [];
  private readonly connections: ConnectionLimiter;
  private readonly sessions = new Map<string, SessionState>();
  private inflight = 0;
  private idle: (() => void)[] = [];
  closing = false;

  constructor(
    /** "smtp" or "submission": the label on connection metrics and in logs */
    private readonly service: string,
    private readonly log: Logger,
    private readonly tls: () => TlsMaterial,
    private readonly limits: () => LimitsConfig,
  ) {
    this.connections = new ConnectionLimiter(() => ({ perIp: limits().maxConnectionsPerIp, total: limits().maxConnections }));
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

  /** smtp-server's onConnect: refuses while closing or over a connection limit; starts the session deadline. */
  onConnect(session: SMTPServerSession, cb: (err?: Error | null) => void): void {
    metrics.connections.inc({ service: this.service });
    const ip = session.remoteAddress;
    if (this.closing) return cb(this.refuse("shutting-down", 421, SHUTTING_DOWN));
    const client = clientKey(ip);
    const ok = this.connections.tryOpen(client);
    if (ok !== true) {
      this.log.warn(`${this.service}.connection_refused`, { ip, client, limit: ok });
      return cb(
        this.refuse(ok === "per-ip" ? "connections-per-ip" : "connections-total", 421, "4.7.0 Too many connections, try again later"),
      );
    }
    const seconds = this.limits().sessionTimeoutSeconds;
    const deadline = setTimeout(() => this.sessionExpired(session.id, seconds), seconds * 1000);
    deadline.unref();
    this.sessions.set(session.id, { client, deadline, inData: false, expired: false, failedRecipients: 0 });
    metrics.activeConnections.inc({ service: this.service });
    this.log.info(`${this.service}.connect`, { session: session.id, ip });
    cb();
  }

  /** smtp-server's onClose; forgets the session if it had been counted. */
  onClose(session: SMTPServerSession): void {
    const state = this.sessions.get(session.id);
    if (!state) return;
    this.sessions.delete(session.id);
    clearTimeout(state.deadline);
    this.connections.close(state.client);
    metrics.activeConnections.dec({ service: this.service });
    this.log.info(`${this.service}.close`, { session: session.id, ip: session.remoteAddress, messages: session.transaction - 1 });
  }

  private sessionExpired(id: string, seconds: number): void {
    const state = this.sessions.get(id);
    if (!state) return;
    state.expired = true;
    // A message under way is bounded by its own deadline; cutting it here would only make the
    // client send it again. The session ends after its reply (data()).
    if (state.inData) return;
    this.cut(id, "session-timeout", `4.4.2 Session time limit of ${seconds} seconds exceeded, closing connection`);
  }

  /** Ends a session now with 421 (smtp-server closes the connection after a 421). */
  private cut(id: string, reason: string, text: string): void {
    for (const server of this.servers) {
      for (const c of server.connections) {
        if (c.id !== id) continue;
        metrics.rejected.inc({ service: this.service, reason });
        this.log.warn(`${this.service}.${reason.replace(/-/g, "_")}`, { session: id, ip: c.remoteAddress });
        c.send(421, text);
        return;
      }
    }
  }

  /**
   * Counts a RCPT refusal against the session's budget (Postfix smtpd_hard_error_limit: address
   * harvesting tries one name after another). Returns the reply to send: the refusal itself, or
   * once the budget is spent, a 421 that ends the session.
   */
  recipientRefused(session: SMTPServerSession, err: Error & { responseCode?: number }): Error {
    const state = this.sessions.get(session.id);
    if (!state || (err.responseCode ?? 0) < 500) return err;
    state.failedRecipients++;
    if (state.failedRecipients <= this.limits().maxFailedRecipients) return err;
    this.log.warn(`${this.service}.too_many_failed_recipients`, {
      session: session.id,
      ip: session.remoteAddress,
      failed: state.failedRecipients,
    });
    return this.refuse("too-many-failed-recipients", 421, "4.7.0 Too many refused recipients, closing connection");
  }

  refuse(reason: string, code: number, text: string): Error {
    metrics.rejected.inc({ service: this.service, reason });
    return smtpError(code, text);
  }

  /**
   * Runs a DATA handler so that a graceful close waits for it; `cb` gets its reply. The client must
   * send the whole message within dataTimeoutSeconds (the idle timeout alone restarts with every
   * byte, so a trickle would hold the connection for ever); what the handler does after the final
   * dot is not the client's time.
   */
  data(
    stream: SMTPServerDataStream,
    session: SMTPServerSession,
    work: () => Promise<string>,
    cb: (err: Error | null, message?: string) => void,
  ): void {
    const state = this.sessions.get(session.id);
    if (state) state.inData = true;
    const seconds = this.limits().dataTimeoutSeconds;
    const deadline = setTimeout(
      () => this.cut(session.id, "data-timeout", `4.4.2 Message not received within ${seconds} seconds, closing connection`),
      seconds * 1000,
    );
    deadline.unref();
    const received = () => clearTimeout(deadline);
    stream.once("end", received);
    stream.once("close", received);
    this.inflight++;
    work()
      .then(
        (msg) => {
          if (state) state.failedRecipients = 0;
          cb(null, msg);
        },
        (err: Error) => cb(err),
      )
      .finally(() => {
        received();
        if (state) {
          state.inData = false;
          // the reply above is written; a session past its deadline ends now
          if (state.expired) this.cut(session.id, "session-timeout", "4.4.2 Session time limit exceeded, closing connection");
        }
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
    this.listeners = new SmtpListeners(service, base.log, base.tls, limits);
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
      ...SMTP_TLS_OPTIONS,
      // RFC 1870: advertise the limit; oversized DATA is refused after it is read (accept.ts).
      size: cfg.limits.maxMessageBytes,
      disableReverseLookup: true,
      logger: false,
      onConnect: (session, cb) => this.listeners.onConnect(session, cb),
      onMailFrom: (address, session, cb) => this.onMailFrom(address, session, cb),
      onRcptTo: (address, session, cb) =>
        this.onRcptTo(address, session, (err) => cb(err ? this.listeners.recipientRefused(session, err) : err)),
      onData: (stream, session, cb) => this.listeners.data(stream, session, () => this.onData(stream, session), cb),
      onClose: (session) => {
        this.txns.delete(session.id);
        this.sessionClosed(session);
        this.listeners.onClose(session);
      },
      ...own,
    });
  }

  /** A session ended: a service drops what it kept for it beyond its transaction. */
  protected sessionClosed(_session: SMTPServerSession): void {}

  protected abstract onMailFrom(address: SMTPServerAddress, session: SMTPServerSession, cb: Callback): void;
  protected abstract onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, cb: Callback): void;
  /** Resolves to the text of the 250 reply; rejects with the refusal. */
  protected abstract onData(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string>;
}
