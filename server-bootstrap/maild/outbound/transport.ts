// One delivery attempt to one recipient domain over SMTP (the queue decides when and how often).
//
// Route (RFC 5321 5.1, RFC 7505): MX hosts by preference, equal ones shuffled; no MX means the
// domain's own addresses; a null MX or a name that does not exist fails at once; DNS trouble
// defers. Each MX host is tried at each of its addresses (IPv6 first), moving on when a
// connection fails, the greeting or EHLO is refused, or the host cannot meet the TLS policy.
// The first host that takes the transaction decides every recipient's result for this attempt.
//
// TLS, per MX host: the strongest policy that applies (tls-policy.ts: DANE, MTA-STS, or
// opportunistic), judged after EHLO; under opportunistic TLS a failed handshake is retried once
// in plaintext (RFC 7435). Every TLS session is counted in the TLS report (RFC 8460) under the
// policy that applied.
//
// Connections (connection-cache.ts): one finished with a transaction stays open for the next
// message to the same domain, MX host and TLS policy, up to the cache's limits. RSET comes
// before the next transaction where RFC 5321 4.1.4 asks for it, after one that did not end with
// a successful DATA (MAIL "MUST NOT be sent if a mail transaction is already open"), and as a
// probe on a connection that waited idle, as Postfix's client does ("An RSET probe should be sent
// before attempting to reuse an open connection for a new transaction",
// postfix/src/smtp/smtp_proto.c). A connection handed straight from a successful transaction to
// the next message goes on with MAIL (RFC 5321 4.1.4: allowed once the previous transaction
// "successfully concluded with a successful DATA command"). A connection that fails the probe,
// or breaks (or answers 421) before any of the message went out, is closed and the message goes
// over a fresh connection: nothing of it reached the server, so nothing can arrive twice. A TLS
// session is judged and counted once, when it is made.
//
// The SMTP protocol itself is nodemailer's SMTPConnection; replies become results per recipient in
// recipient-results.ts. It pipelines the envelope (MAIL, every RCPT and DATA in one write) when the
// server offers PIPELINING (RFC 2920; nodemailer 10.6 dist/cjs/smtp-connection/index.js,
// _setEnvelope).
import { createReadStream, readFileSync } from "node:fs";
import { isIPv6 } from "node:net";
import { join } from "node:path";
import * as tls from "node:tls";
import SMTPConnection from "nodemailer/lib/smtp-connection";
import type { MaildConfig } from "../config";
import type { Logger } from "../log";
import { counter } from "../metrics";
import { adServers, createAdQuery, RRTYPE, type AdQuery } from "./dns-ad";
import { isSecure, lookupTlsa, tlsaToString } from "./dane";
import { ConnectionCache, type CachedConnection } from "./connection-cache";
import { fetchPolicyText, lookupVia, MtaStsPolicies, mxAllowed, type StsLookup, type StsPolicy } from "./mta-sts";
import { createCachingDns } from "./dns-cache";
import { findRoute, hostAddresses, type DnsLookup, type MxHost } from "./mx";
import { certificateResult, type TlsReport } from "./tls-report";
import { judgeTls, observeTls, policyLabel, reportedPolicy, reportedStsPolicy, requiresTls, type HostPolicy } from "./tls-policy";
import { everyone, failedResults, oneLine, routeFailure, sentResults, type Failure, type SmtpError } from "./recipient-results";
import type { DeliveryAttempt, RecipientResult, Transport } from "./types";

const recipientsCounter = counter("maild_outbound_recipients_total", "Recipient results of outbound delivery attempts, by status");

type SessionOutcome = { kind: "done"; results: RecipientResult[] } | { kind: "next"; failure: Failure; retryPlaintext?: boolean };

/** An open SMTP session as the connection cache keeps it: the connection and what it was opened as. */
interface OpenSession {
  smtp: SMTPConnection;
  mx: string;
  ip: string;
  /** the TLS protocol, e.g. TLSv1.3, or "none" */
  tls: string;
  /** the last transaction ended with the server's 250 to the message: no transaction is open */
  concluded: boolean;
}

/** One connection slot of the cache, held by an attempt while it opens a connection; the cache adopts it with the connection. */
interface Slot {
  release: () => void;
  adopted: boolean;
}

/** How one transaction ended, for the results and for what becomes of the connection. */
interface TransactionEnd {
  results: RecipientResult[];
  /** the session may carry another transaction */
  reusable: boolean;
  /** the connection failed (or the server closed it, 421) before any of the message was read for sending */
  lostBeforeMessage: boolean;
  /** the server took the message (250 after its end): no transaction is left open */
  concluded: boolean;
}

// postconf(5) smtp_rset_timeout: "The SMTP client sends RSET in order ... to verify that a cached
// session is still usable"; Postfix's default limit for it is 20 s.
const RSET_TIMEOUT_MS = 20_000;

// nodemailer's error codes for a connection that failed, as opposed to a reply to a command
// (EENVELOPE, EMESSAGE) or an unreadable message (ESTREAM): dist/cjs/smtp-connection/index.js.
const CONNECTION_ERRORS = new Set(["ECONNECTION", "ETIMEDOUT", "ESOCKET", "EPROTOCOL"]);

export interface SmtpTransportOptions {
  config: () => MaildConfig;
  log: Logger;
  tlsReport: TlsReport;
  /** MX/A/AAAA/TXT lookups; default: `adQuery`'s answers, kept for their TTL (dns-cache.ts) */
  resolver?: DnsLookup;
  /**
   * DNSSEC-aware queries (DANE, and under the default `resolver` every lookup); default:
   * config().dnsServers (or resolv.conf) over UDP/TCP. Its answers are kept for their TTL.
   */
  adQuery?: AdQuery;
  /** order of equally preferred MX hosts; default Math.random */
  random?: () => number;
}

export class SmtpTransport implements Transport {
  private readonly cache: ConnectionCache<OpenSession>;
  private readonly sts: MtaStsPolicies;
  private resolvers?: { key: string; lookup: DnsLookup; ad: AdQuery };
  private trustCache?: { key: string; ca: string[]; context: tls.SecureContext };

  constructor(private readonly opts: SmtpTransportOptions) {
    this.cache = new ConnectionCache<OpenSession>({
      limits: () => {
        const o = opts.config().outbound;
        return {
          perDomain: o.maxConnectionsPerDomain,
          total: o.maxConnections,
          idleMs: o.idleConnectionSeconds * 1000,
          maxMessages: o.maxMessagesPerConnection,
          maxAgeMs: o.maxConnectionAgeSeconds * 1000,
        };
      },
      close: (s) => endSession(s.smtp, opts.config().outbound.timeoutMs),
      setIdle: (s, idle) => {
        const socket = s.smtp._socket;
        if (!socket) return;
        if (idle) socket.unref();
        else socket.ref();
      },
    });
    this.sts = new MtaStsPolicies({
      dir: () => join(opts.config().dataDir, "queue", "mta-sts"),
      resolveTxt: (name) => this.dns().lookup.resolveTxt(name),
      fetch: (domain) => {
        const cfg = opts.config();
        const dns = this.dns().lookup;
        return fetchPolicyText(domain, {
          ca: this.trust().ca,
          timeoutMs: cfg.outbound.timeoutMs,
          lookup: lookupVia(
            (n) => dns.resolve6(n),
            (n) => dns.resolve4(n),
            cfg.outbound,
          ),
        });
      },
      onCacheError: (err) => opts.log.warn("outbound.mta-sts-cache", { error: err.message }),
    });
  }

  /** Never rejects: every failure is a result per recipient. */
  async deliver(attempt: DeliveryAttempt): Promise<RecipientResult[]> {
    let results: RecipientResult[];
    try {
      results = await this.attemptDelivery(attempt);
    } catch (err) {
      this.opts.log.error("outbound.internal-error", {
        id: attempt.id,
        domain: attempt.domain,
        error: (err as Error).stack ?? String(err),
      });
      results = everyone(attempt, "deferred", {
        enhancedCode: "4.3.0",
        diagnostic: `internal error: ${(err as Error).message}`,
        remoteReply: false,
      });
    }
    for (const r of results) recipientsCounter.inc({ status: r.status });
    return results;
  }

  /** Closes the idle connections (those still busy close when their transaction ends). */
  close(): Promise<void> {
    return this.cache.close();
  }

  /** Open connections (busy or idle) and idle ones, for monitoring and tests. */
  connections(domain?: string): { open: number; idle: number } {
    return { open: this.cache.slots.active(domain), idle: this.cache.idleCount() };
  }

  private dns(): { lookup: DnsLookup; ad: AdQuery } {
    const cfg = this.opts.config();
    const key = JSON.stringify(cfg.dnsServers ?? []);
    if (this.resolvers?.key !== key) {
      // a new set of servers starts with an empty cache
      const cache = createCachingDns(this.opts.adQuery ?? createAdQuery(adServers(cfg.dnsServers)));
      this.resolvers = { key, lookup: this.opts.resolver ?? cache.lookup, ad: cache.query };
    }
    return this.resolvers;
  }

  /**
   * Node's default CAs plus outbound.extraCaPath (RFC 8461 3.3 and 4.2: the Web PKI), built once
   * per configured path: parsing a whole CA bundle for every connection would cost more than TLS.
   */
  private trust(): { ca: string[]; context: tls.SecureContext } {
    const extra = this.opts.config().outbound.extraCaPath;
    const key = extra ?? "";
    if (this.trustCache?.key !== key) {
      const ca = [...tls.getCACertificates("default")];
      if (extra) {
        try {
          ca.push(readFileSync(extra, "utf8"));
        } catch (err) {
          this.opts.log.warn("outbound.extra-ca-unreadable", { path: extra, error: (err as Error).message });
        }
      }
      this.trustCache = { key, ca, context: tls.createSecureContext({ ca }) };
    }
    return this.trustCache;
  }

  private async attemptDelivery(attempt: DeliveryAttempt): Promise<RecipientResult[]> {
    const cfg = this.opts.config();
    const { domain } = attempt;
    const { lookup, ad } = this.dns();
    const route = await findRoute(lookup, domain, cfg.hostname, this.opts.random);
    if (route.kind !== "hosts") {
      const { status, reason, failure } = routeFailure(route, domain, cfg.hostname);
      this.opts.log.info("outbound.route", { id: attempt.id, domain, result: status, reason });
      return everyone(attempt, status, failure);
    }

    const sts: StsLookup = cfg.outbound.mtaSts ? await this.sts.lookup(domain) : {};
    if (sts.failure) {
      this.opts.tlsReport.record({
        policyDomain: domain,
        policyType: "sts",
        result: sts.failure.result,
        failureReasonCode: sts.failure.reason,
      });
      this.opts.log.warn("outbound.mta-sts", {
        id: attempt.id,
        domain,
        result: sts.failure.result,
        reason: sts.failure.reason,
        cached: sts.policy !== undefined,
      });
    }
    // RFC 7672 2.2.1: DANE only when the MX RRset is DNSSEC-secure. Without MX records the
    // domain itself is the host, and its secure addresses are checked with the host below.
    const implicit = route.hosts[0].implicit;
    const mxSecure = cfg.outbound.dane && (implicit || (await isSecure(ad, domain, RRTYPE.MX)));

    let last: Failure = { enhancedCode: "4.4.1", diagnostic: `no MX host of ${domain} could be reached`, remoteReply: false };
    for (const host of route.hosts) {
      const policy = await this.hostPolicy(attempt, host, mxSecure, sts.policy, ad);
      if ("diagnostic" in policy) {
        last = policy;
        continue;
      }
      const key = connectionKey(cfg, domain, host.name, policy);
      // A connection open to this host under this policy (idle, or handed over as its
      // transaction ends), else a slot for a new one: only then are the addresses looked up.
      const lease = await this.lease(attempt, policy, key);
      if (lease.kind === "done") return lease.results;
      const slot: Slot = { release: lease.release, adopted: false };
      try {
        const addresses = await hostAddresses(lookup, host.name, cfg.outbound);
        if (addresses === "temporary") {
          last = { enhancedCode: "4.4.3", diagnostic: `address lookup for MX host ${host.name} failed temporarily`, remoteReply: false };
          continue;
        }
        if (addresses.length === 0) {
          last = {
            enhancedCode: "4.4.4",
            diagnostic: `MX host ${host.name} has no ${[cfg.outbound.ipv6 ? "AAAA" : "", cfg.outbound.ipv4 ? "A" : ""].filter(Boolean).join(" or ")} records`,
            remoteReply: false,
          };
          continue;
        }
        for (const ip of addresses) {
          let outcome = await this.openSession(attempt, host, ip, policy, key, false, slot);
          if (outcome.kind === "next" && outcome.retryPlaintext) {
            last = outcome.failure;
            outcome = await this.openSession(attempt, host, ip, policy, key, true, slot);
          }
          if (outcome.kind === "done") return outcome.results;
          last = outcome.failure;
        }
      } finally {
        if (!slot.adopted) slot.release();
      }
    }
    this.opts.log.info("outbound.delivery", { id: attempt.id, domain, result: "deferred", reason: last.diagnostic });
    return everyone(attempt, "deferred", last);
  }

  /** The TLS rule for one MX host, or the reason not to use the host at all. */
  private async hostPolicy(
    attempt: DeliveryAttempt,
    host: MxHost,
    mxSecure: boolean,
    sts: StsPolicy | undefined,
    ad: AdQuery,
  ): Promise<HostPolicy | Failure> {
    const cfg = this.opts.config();
    const domain = attempt.domain;
    // RFC 7672 2.2.2: TLSA records count only for a host whose address records are secure too.
    if (mxSecure && (await Promise.all([isSecure(ad, host.name, RRTYPE.A), isSecure(ad, host.name, RRTYPE.AAAA)])).every(Boolean)) {
      const tlsa = await lookupTlsa(ad, host.name, cfg.outbound.port);
      if (tlsa.kind === "failed") {
        // RFC 7672 2.1.1: a failed TLSA lookup could be an attacker hiding the records; this
        // host is not used. RFC 8460 4.3.2.1: dnssec-invalid.
        this.opts.tlsReport.record({
          policyDomain: domain,
          policyType: "tlsa",
          result: "dnssec-invalid",
          receivingMxHostname: host.name,
          failureReasonCode: tlsa.reason,
        });
        this.opts.log.warn("outbound.dane", {
          id: attempt.id,
          domain,
          mx: host.name,
          policy: "dane",
          result: "dnssec-invalid",
          reason: tlsa.reason,
        });
        return {
          enhancedCode: "4.7.5",
          diagnostic: `TLSA lookup for ${host.name} failed (${tlsa.reason}); not delivering without it (RFC 7672)`,
          remoteReply: false,
          remoteMta: host.name,
        };
      }
      if (tlsa.kind === "secure") return { type: "tlsa", records: tlsa.records };
    }
    if (sts && sts.mode !== "none") {
      const allowed = mxAllowed(sts, host.name);
      if (!allowed && sts.mode === "enforce") {
        this.opts.tlsReport.record({
          policyDomain: domain,
          ...reportedStsPolicy(sts),
          result: "validation-failure",
          receivingMxHostname: host.name,
          failureReasonCode: "mx-not-in-policy",
        });
        this.opts.log.warn("outbound.mta-sts", {
          id: attempt.id,
          domain,
          mx: host.name,
          policy: "sts-enforce",
          result: "validation-failure",
          reason: "MX host not in policy",
        });
        return {
          enhancedCode: "4.7.5",
          diagnostic: `MX host ${host.name} is not listed in the MTA-STS policy of ${domain} (RFC 8461 4.1)`,
          remoteReply: false,
          remoteMta: host.name,
        };
      }
      return { type: "sts", policy: sts, enforce: sts.mode === "enforce", mxAllowed: allowed };
    }
    return { type: "none" };
  }

  /**
   * A cached connection for `key` (idle, or handed over while this attempt waited) that passed
   * its RSET probe and carried the transaction; or, when there is none, a slot for a new one.
   */
  private async lease(
    attempt: DeliveryAttempt,
    policy: HostPolicy,
    key: string,
  ): Promise<{ kind: "done"; results: RecipientResult[] } | { kind: "open"; release: () => void }> {
    for (;;) {
      const lease = await this.cache.acquire(attempt.domain, key);
      if (lease.kind === "open") return lease;
      const outcome = await this.onOpenConnection(attempt, policy, lease.connection, lease.wasIdle);
      if (outcome) return outcome;
    }
  }

  /** A new connection to one address in `slot`; the cache adopts it (and the slot) after the TLS decision. */
  private async openSession(
    attempt: DeliveryAttempt,
    host: MxHost,
    ip: string,
    policy: HostPolicy,
    key: string,
    plaintext: boolean,
    slot: Slot,
  ): Promise<SessionOutcome> {
    const cfg = this.opts.config();
    const ob = cfg.outbound;
    const localAddress = isIPv6(ip) ? ob.sourceIpv6 : ob.sourceIpv4;
    const fields = { id: attempt.id, domain: attempt.domain, mx: host.name, ip, policy: policyLabel(policy) };
    const openedAt = Date.now();
    const conn = new SMTPConnection({
      host: ip,
      port: ob.port,
      name: cfg.hostname,
      // SNI with the MX name (RFC 7672 8.1 asks for it with DANE; harmless elsewhere)
      servername: host.name,
      ...(localAddress ? { localAddress } : {}),
      connectionTimeout: ob.timeoutMs,
      greetingTimeout: ob.timeoutMs,
      socketTimeout: ob.timeoutMs,
      // STARTTLS whenever offered; a refused STARTTLS leaves a plaintext session that the policy
      // check below then judges (so a required TLS is never silently skipped).
      opportunisticTLS: true,
      ignoreTLS: plaintext,
      // The certificate is judged after the handshake, by policy (judgeTls), not by OpenSSL:
      // opportunistic TLS must not fail on it, and the report wants the precise reason.
      tls: { secureContext: this.trust().context, rejectUnauthorized: false, checkServerIdentity: () => undefined },
      logger: false,
    });
    // Errors also arrive through the connect and send callbacks; this keeps 'error' handled.
    conn.on("error", () => undefined);
    // until the cache has it, this session's own: closed here
    let cached: CachedConnection<OpenSession> | undefined;
    try {
      try {
        await new Promise<void>((resolve, reject) => {
          conn.once("error", reject);
          conn.connect((err) => (err ? reject(err) : resolve()));
        });
      } catch (err) {
        // A failure while `upgrading` is a failed (or stalled) TLS handshake after STARTTLS.
        const duringTls = conn.upgrading === true || (err as SmtpError).code === "ETLS";
        return this.connectFailure(attempt, host, ip, policy, plaintext, duringTls, err as SmtpError, fields);
      }

      // `_socket` is SMTPConnection's socket, the TLS one after STARTTLS (declared public in
      // nodemailer's smtp-connection/index.d.ts); nothing else exposes the peer's certificate chain.
      const socket = conn._socket;
      const observed = observeTls(conn.secure ? socket : undefined);
      const verdict = judgeTls(policy, host.name, observed);
      const tlsLabel = observed.secure ? (observed.protocol ?? "tls") : "none";
      // The plaintext retry is the fallback for a handshake failure already counted. RFC 8460 4.4
      // counts sessions: this one counts here, however many messages it carries.
      if (!plaintext)
        this.opts.tlsReport.record({
          policyDomain: attempt.domain,
          ...reportedPolicy(policy),
          result: verdict.result,
          receivingMxHostname: host.name,
          receivingIp: ip,
          ...(socket && socket.localAddress ? { sendingMtaIp: socket.localAddress } : {}),
          ...(verdict.result !== "success" && verdict.reason ? { failureReasonCode: verdict.reason } : {}),
        });
      if (verdict.block) {
        this.opts.log.warn("outbound.tls", { ...fields, tls: tlsLabel, result: verdict.result, reason: verdict.reason });
        return {
          kind: "next",
          failure: {
            enhancedCode: "4.7.5",
            diagnostic: `TLS to ${host.name} [${ip}] does not satisfy the ${policyLabel(policy)} policy of ${attempt.domain}: ${verdict.result}${verdict.reason ? ` (${verdict.reason})` : ""}`,
            remoteReply: false,
            remoteMta: host.name,
          },
        };
      }
      if (verdict.result !== "success")
        this.opts.log.info("outbound.tls", { ...fields, tls: tlsLabel, result: verdict.result, reason: verdict.reason });

      cached = this.cache.add(
        { smtp: conn, mx: host.name, ip, tls: tlsLabel, concluded: true },
        attempt.domain,
        key,
        openedAt,
        slot.release,
      );
      slot.adopted = true;
      const entry = cached;
      conn.once("end", () => this.cache.lost(entry));
      // on a new connection whatever happens is this attempt's result, as without a cache
      const outcome = await this.deliverOn(attempt, policy, cached, false);
      if (!outcome) throw new Error("unreachable: only a reused connection is given up before the message");
      return outcome;
    } finally {
      if (!cached) await endSession(conn, ob.timeoutMs);
    }
  }

  /**
   * The transaction on a connection the cache had open, after RSET where it is due (see the top
   * of this file). Undefined when the connection proved unusable before any of the message was
   * sent: it is closed, and the caller takes another one or opens a new one.
   */
  private async onOpenConnection(
    attempt: DeliveryAttempt,
    policy: HostPolicy,
    open: CachedConnection<OpenSession>,
    wasIdle: boolean,
  ): Promise<{ kind: "done"; results: RecipientResult[] } | undefined> {
    const s = open.conn;
    const problem = wasIdle || !s.concluded ? await this.probe(s.smtp) : undefined;
    if (problem) {
      this.opts.log.info("outbound.connection", {
        id: attempt.id,
        domain: attempt.domain,
        mx: s.mx,
        ip: s.ip,
        result: "unusable",
        reason: `RSET probe: ${problem}`,
        transactions: open.transactions,
      });
      await this.cache.discard(open);
      return undefined;
    }
    return this.deliverOn(attempt, policy, open, true);
  }

  /**
   * One transaction on an established connection, which then goes back to the cache. On a reused
   * connection, a failure before any of the message went out yields undefined (try another).
   */
  private async deliverOn(
    attempt: DeliveryAttempt,
    policy: HostPolicy,
    open: CachedConnection<OpenSession>,
    reused: boolean,
  ): Promise<{ kind: "done"; results: RecipientResult[] } | undefined> {
    const s = open.conn;
    open.transactions++;
    const end = await this.transaction(s.smtp, attempt, s.mx);
    s.concluded = end.concluded;
    const fields = { id: attempt.id, domain: attempt.domain, mx: s.mx, ip: s.ip, policy: policyLabel(policy), tls: s.tls };
    if (reused && end.lostBeforeMessage) {
      this.opts.log.info("outbound.connection", {
        ...fields,
        result: "unusable",
        reason: end.results[0]?.diagnostic,
        transactions: open.transactions,
      });
      await this.cache.discard(open);
      return undefined;
    }
    this.cache.checkIn(open, end.reusable);
    const summary = end.results
      .map((r) => r.status)
      .sort()
      .filter((st, i, a) => a.indexOf(st) === i)
      .join(",");
    this.opts.log.info("outbound.delivery", {
      ...fields,
      result: summary,
      recipients: end.results.length,
      reply: end.results[0]?.diagnostic,
      // 1 on a new connection; the cache's reuse makes it larger
      transaction: open.transactions,
    });
    return { kind: "done", results: end.results };
  }

  /** RSET on a cached connection: undefined when it answered 250, else what went wrong. */
  private probe(conn: SMTPConnection): Promise<string | undefined> {
    if (conn.destroyed) return Promise.resolve("connection closed");
    const ms = Math.min(this.opts.config().outbound.timeoutMs, RSET_TIMEOUT_MS);
    return new Promise((resolve) => {
      const finish = (problem: string | undefined) => {
        clearTimeout(timer);
        conn.removeListener("end", onEnd);
        resolve(problem);
      };
      const onEnd = () => finish("connection closed");
      const timer = setTimeout(() => finish(`no reply within ${ms} ms`), ms);
      conn.once("end", onEnd);
      conn.reset((err) => finish(err ? err.message : undefined));
    });
  }

  private connectFailure(
    attempt: DeliveryAttempt,
    host: MxHost,
    ip: string,
    policy: HostPolicy,
    plaintext: boolean,
    duringTls: boolean,
    err: SmtpError,
    fields: Record<string, string>,
  ): SessionOutcome {
    const where = `${host.name} [${ip}]`;
    if (duringTls && !plaintext) {
      this.opts.tlsReport.record({
        policyDomain: attempt.domain,
        ...reportedPolicy(policy),
        result: certificateResult(err.originalCode) ?? "validation-failure",
        receivingMxHostname: host.name,
        receivingIp: ip,
        failureReasonCode: `tls-handshake-failed${err.originalCode ? `: ${err.originalCode}` : ""}`,
      });
      this.opts.log.warn("outbound.tls", { ...fields, tls: "failed", result: "handshake-failed", reason: err.message });
      return {
        kind: "next",
        failure: {
          enhancedCode: "4.7.5",
          diagnostic: `TLS handshake with ${where} failed: ${err.message}`,
          remoteReply: false,
          remoteMta: host.name,
        },
        // RFC 7435: opportunistic security falls back to cleartext rather than not delivering.
        retryPlaintext: !requiresTls(policy),
      };
    }
    this.opts.log.info("outbound.connect", { ...fields, result: "failed", reason: err.message });
    if (err.response) {
      // A refusal at the greeting or EHLO/HELO (RFC 5321 3.1, 4.3.2): try the next host.
      return {
        kind: "next",
        failure: {
          enhancedCode: "4.4.2",
          diagnostic: `${where} refused the session: ${oneLine(err.response)}`,
          remoteReply: false,
          remoteMta: host.name,
        },
      };
    }
    return {
      kind: "next",
      failure: { enhancedCode: "4.4.1", diagnostic: `cannot talk to ${where}: ${err.message}`, remoteReply: false, remoteMta: host.name },
    };
  }

  /** MAIL, RCPT per recipient, DATA with the message streamed from disk; results per recipient. */
  private transaction(conn: SMTPConnection, attempt: DeliveryAttempt, mx: string): Promise<TransactionEnd> {
    return new Promise((resolve) => {
      // a buffer the size of a small message (one read and the end), not 64 KiB for each
      const message = createReadStream(attempt.messagePath, { highWaterMark: Math.min(64 * 1024, Math.max(1024, attempt.size + 1)) });
      // DATA is only sent once a recipient was accepted: nodemailer stops after the RCPT replies
      // when all were refused (with PIPELINING the DATA command travels with them, RFC 2920 3.1,
      // and the server refuses it; no message content is sent either way).
      conn.send({ from: attempt.sender, to: attempt.recipients, size: attempt.size, use8BitMime: true }, message, (err, info) => {
        // nodemailer reads the message only once DATA was answered 354: nothing read, nothing sent
        const untouched = message.bytesRead === 0;
        message.destroy();
        const e = err as SmtpError | null;
        // A message that could not be read may be cut off inside DATA: drop the connection so
        // nothing sent later (QUIT) can become part of it or end it with a dot.
        if (e?.code === "ESTREAM") conn.close();
        // A reply to one of this transaction's commands ends the transaction and leaves the
        // session as it was (RFC 5321 4.1.4); the next one begins after an RSET probe. 421 means
        // the server is closing the session (RFC 5321 4.2.2).
        const reply = !e || ((e.code === "EENVELOPE" || e.code === "EMESSAGE") && e.responseCode !== 421);
        const lostBeforeMessage =
          !!e && untouched && (e.responseCode === 421 || (e.responseCode === undefined && CONNECTION_ERRORS.has(e.code ?? "")));
        const results = e
          ? failedResults(attempt, mx, e, rcptRefusals(conn))
          : sentResults(attempt, mx, info as Parameters<typeof sentResults>[2]);
        resolve({ results, reusable: reply && !conn.destroyed, lostBeforeMessage, concluded: !e });
      });
    });
  }
}

/**
 * The RCPT refusals of the transaction in progress. nodemailer hands them to the send callback
 * only on success or when every recipient was refused (dist/cjs/smtp-connection/index.js, send()
 * and _envelopeError()); after a DATA failure they are only on its envelope, which no public
 * member exposes.
 */
function rcptRefusals(conn: SMTPConnection): SmtpError[] {
  return (conn as unknown as { _envelope?: { rejectedErrors?: SmtpError[] } })._envelope?.rejectedErrors ?? [];
}

/**
 * The cache key of a connection: what must be the same for a message to go over a connection
 * opened for another (see connection-cache.ts). The TLS policy goes in whole: the DANE records,
 * or the MTA-STS policy id, mode and MX patterns with the verdict on this host.
 */
export function connectionKey(cfg: MaildConfig, domain: string, mx: string, policy: HostPolicy): string {
  const ob = cfg.outbound;
  const tlsPolicy =
    policy.type === "tlsa"
      ? ["tlsa", ...policy.records.map(tlsaToString)]
      : policy.type === "sts"
        ? ["sts", policy.policy.id, policy.policy.mode, policy.enforce, policy.mxAllowed, ...policy.policy.mx]
        : ["none"];
  return JSON.stringify([domain, mx, tlsPolicy, ob.port, cfg.hostname, ob.sourceIpv4 ?? "", ob.sourceIpv6 ?? "", ob.ipv4, ob.ipv6]);
}

/** QUIT (RFC 5321 4.1.1.10: the client does not just drop the connection), then the socket, at most `ms` later. */
async function endSession(conn: SMTPConnection, ms: number): Promise<void> {
  if (!conn.destroyed) conn.quit();
  await closed(conn, ms);
  conn.close();
}

/** Resolves when the connection has ended (QUIT answered or socket closed), or after `ms`. */
function closed(conn: SMTPConnection, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = conn._socket;
    if (!socket || socket.destroyed) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      resolve();
    }
    conn.once("end", done);
    socket.once("close", done);
  });
}
