// One delivery attempt to one recipient domain over SMTP (the queue decides when and how often).
//
// Route (RFC 5321 5.1, RFC 7505): MX hosts by preference, equal ones shuffled; no MX means the
// domain's own addresses; a null MX or a name that does not exist fails at once; DNS trouble
// defers. Each MX host is tried at each of its addresses (IPv6 first), moving on when a
// connection fails, the greeting or EHLO is refused, or the host cannot meet the TLS policy.
// The first host that takes the transaction decides every recipient's result for this attempt.
//
// TLS, per MX host, strongest rule first:
//   DANE (RFC 7672): a DNSSEC-validated MX RRset, secure addresses and secure TLSA records make
//     STARTTLS mandatory and authenticate the certificate against the records. It takes
//     precedence over MTA-STS (RFC 8461 2).
//   MTA-STS (RFC 8461): enforce: only hosts the policy lists, only over STARTTLS with a
//     certificate valid for the host under the Web PKI; testing: deliver anyway, report.
//   Otherwise opportunistic (RFC 7435, RFC 3207): STARTTLS whenever offered, certificate
//     problems reported but not fatal, and a failed handshake retried once in plaintext.
// Every TLS session is counted in the TLS report (RFC 8460) under the policy that applied.
//
// The SMTP protocol itself is nodemailer's SMTPConnection; this file is policy.
import { createReadStream, readFileSync } from "node:fs";
import { isIPv6 } from "node:net";
import { join } from "node:path";
import * as tls from "node:tls";
import { X509Certificate } from "node:crypto";
import SMTPConnection from "nodemailer/lib/smtp-connection";
import type { MaildConfig } from "../config";
import type { Logger } from "../log";
import { counter } from "../metrics";
import { adServers, createAdQuery, RRTYPE, type AdQuery } from "./dns-ad";
import { isSecure, isUsable, lookupTlsa, tlsaToString, verifyDane, type TlsaRecord } from "./dane";
import { ConnectionSlots } from "./connection-limits";
import { fetchPolicyText, lookupVia, MtaStsPolicies, mxAllowed, policyLines, type StsLookup, type StsPolicy } from "./mta-sts";
import { createDnsLookup, findRoute, hostAddresses, type DnsLookup, type MxHost } from "./mx";
import { certificateResult, type TlsPolicyType, type TlsReport } from "./tls-report";
import type { DeliveryAttempt, RecipientResult, TlsResultType, Transport } from "./types";

const recipientsCounter = counter("maild_outbound_recipients_total", "Recipient results of outbound delivery attempts, by status");

/** The TLS rule that applies to one MX host. */
export type HostPolicy =
  { type: "tlsa"; records: TlsaRecord[] } | { type: "sts"; policy: StsPolicy; enforce: boolean; mxAllowed: boolean } | { type: "none" };

/** What a connection showed of its TLS, after EHLO. */
export interface TlsObservation {
  secure: boolean;
  /** OpenSSL's verdict on the chain under our trust store (e.g. DEPTH_ZERO_SELF_SIGNED_CERT) */
  verifyError?: string;
  /** leaf first */
  chain: X509Certificate[];
  /** e.g. TLSv1.3 */
  protocol?: string;
}

export interface TlsVerdict {
  result: TlsResultType;
  reason?: string;
  /** the policy forbids going on with this host */
  block: boolean;
}

function requiresTls(p: HostPolicy): boolean {
  return p.type === "tlsa" || (p.type === "sts" && p.enforce);
}

/** Web PKI check of a live session: chain under our trust store, then the MX name (RFC 6125). */
function webPki(mxHost: string, o: TlsObservation): { result: TlsResultType; reason?: string } {
  if (o.verifyError) return { result: certificateResult(o.verifyError) ?? "validation-failure", reason: o.verifyError };
  const leaf = o.chain[0];
  if (!leaf) return { result: "validation-failure", reason: "no certificate" };
  if (leaf.checkHost(mxHost, { wildcards: true, partialWildcards: false, multiLabelWildcards: false }) === undefined) {
    return { result: "certificate-host-mismatch", reason: `certificate not valid for ${mxHost}` };
  }
  return { result: "success" };
}

/**
 * The decision for one established connection: is its TLS good enough for the host's policy, and
 * what is it counted as? Pure; the transport acts on it.
 */
export function judgeTls(policy: HostPolicy, mxHost: string, o: TlsObservation, now = new Date()): TlsVerdict {
  if (!o.secure) {
    return { result: "starttls-not-supported", reason: "no TLS session (STARTTLS not offered or refused)", block: requiresTls(policy) };
  }
  if (policy.type === "tlsa") {
    // RFC 7672 2.2 / 3.1: a secure RRset with only unusable records still demands TLS, but
    // cannot authenticate: encryption without authentication is all that is asked then.
    if (!policy.records.some(isUsable)) return { result: "success", reason: "no usable TLSA records: encryption only", block: false };
    const v = verifyDane(o.chain, policy.records, [mxHost], now);
    return v.ok ? { result: "success", block: false } : { result: v.result, reason: v.reason, block: true };
  }
  const pki = webPki(mxHost, o);
  if (policy.type === "sts") {
    // RFC 8461 4.1 in testing mode: an unlisted MX is reported, and delivery goes on.
    if (!policy.mxAllowed) return { result: "validation-failure", reason: `${mxHost} is not listed in the policy`, block: false };
    return { ...pki, block: policy.enforce && pki.result !== "success" };
  }
  return { ...pki, block: false };
}

function policyType(p: HostPolicy): TlsPolicyType {
  return p.type === "tlsa" ? "tlsa" : p.type === "sts" ? "sts" : "no-policy-found";
}

function policyLabel(p: HostPolicy): string {
  if (p.type === "sts") return `sts-${p.policy.mode}`;
  return p.type === "tlsa" ? "dane" : "none";
}

// RFC 3463: "class.subject.detail" after the basic code, in the same class.
const ENHANCED = /^([245])\d\d[ -]([245])\.(\d{1,3})\.(\d{1,3})\b/;

function oneLine(reply: string): string {
  return reply.replace(/\r?\n/g, " ").trim();
}

/** A recipient's result from a server reply (RFC 5321 4.2.1: 2yz done, 4yz transient, 5yz permanent). */
export function resultFromReply(recipient: string, reply: string, remoteMta: string): RecipientResult {
  const text = oneLine(reply);
  const basic = text.charAt(0);
  const m = ENHANCED.exec(text);
  const enhancedCode = m && m[1] === m[2] ? `${m[2]}.${m[3]}.${m[4]}` : `${basic === "2" || basic === "5" ? basic : "4"}.0.0`;
  const status = basic === "2" ? "delivered" : basic === "5" ? "failed" : "deferred";
  return { recipient, status, enhancedCode, diagnostic: text, remoteReply: true, remoteMta };
}

interface Failure {
  enhancedCode: string;
  diagnostic: string;
  remoteReply: boolean;
  remoteMta?: string;
}

function everyone(attempt: DeliveryAttempt, status: RecipientResult["status"], f: Failure): RecipientResult[] {
  return attempt.recipients.map((recipient) => ({ recipient, status, ...f }));
}

type SmtpError = Error & {
  code?: string;
  originalCode?: string;
  response?: string;
  responseCode?: number;
  command?: string;
  recipient?: string;
  rejectedErrors?: SmtpError[];
};

type SessionOutcome = { kind: "done"; results: RecipientResult[] } | { kind: "next"; failure: Failure; retryPlaintext?: boolean };

export interface SmtpTransportOptions {
  config: () => MaildConfig;
  log: Logger;
  tlsReport: TlsReport;
  /** MX/A/AAAA/TXT lookups; default: Node's resolver on config().dnsServers (or resolv.conf) */
  resolver?: DnsLookup;
  /** DNSSEC-aware queries for DANE; default: config().dnsServers (or resolv.conf) over UDP/TCP */
  adQuery?: AdQuery;
  /** order of equally preferred MX hosts; default Math.random */
  random?: () => number;
}

export class SmtpTransport implements Transport {
  private readonly slots: ConnectionSlots;
  private readonly sts: MtaStsPolicies;
  private dnsCache?: { key: string; lookup: DnsLookup; ad: AdQuery };
  private trustCache?: { key: string; ca: string[]; context: tls.SecureContext };

  constructor(private readonly opts: SmtpTransportOptions) {
    this.slots = new ConnectionSlots(() => {
      const o = opts.config().outbound;
      return { perDomain: o.maxConnectionsPerDomain, total: o.maxConnections };
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

  private dns(): { lookup: DnsLookup; ad: AdQuery } {
    const cfg = this.opts.config();
    const key = JSON.stringify(cfg.dnsServers ?? []);
    if (this.dnsCache?.key !== key) {
      this.dnsCache = {
        key,
        lookup: this.opts.resolver ?? createDnsLookup(cfg.dnsServers),
        ad: this.opts.adQuery ?? createAdQuery(adServers(cfg.dnsServers)),
      };
    }
    return this.dnsCache;
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
    const log = (result: string, fields: Record<string, string>) =>
      this.opts.log.info("outbound.route", { id: attempt.id, domain, result, ...fields });
    switch (route.kind) {
      case "nxdomain":
        log("failed", { reason: "nxdomain" });
        return everyone(attempt, "failed", {
          enhancedCode: "5.1.2",
          diagnostic: `domain ${domain} does not exist (DNS NXDOMAIN)`,
          remoteReply: false,
        });
      case "null-mx":
        log("failed", { reason: "null-mx" });
        return everyone(attempt, "failed", {
          enhancedCode: "5.1.10",
          diagnostic: `domain ${domain} does not accept mail (null MX, RFC 7505)`,
          remoteReply: false,
        });
      case "no-mail-host":
        log("failed", { reason: "no-mail-host" });
        // RFC 3463 X.4.4: no routing information, e.g. a name with only an SOA.
        return everyone(attempt, "failed", {
          enhancedCode: "5.4.4",
          diagnostic: `domain ${domain} has no MX and no address records`,
          remoteReply: false,
        });
      case "loop":
        log("failed", { reason: "loop" });
        return everyone(attempt, "failed", {
          enhancedCode: "5.4.6",
          diagnostic: `mail for ${domain} loops back to myself (${cfg.hostname} is its best MX)`,
          remoteReply: false,
        });
      case "temporary":
        log("deferred", { reason: route.reason });
        return everyone(attempt, "deferred", { enhancedCode: "4.4.3", diagnostic: route.reason, remoteReply: false });
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
        let outcome = await this.session(attempt, host, ip, policy, false);
        if (outcome.kind === "next" && outcome.retryPlaintext) {
          last = outcome.failure;
          outcome = await this.session(attempt, host, ip, policy, true);
        }
        if (outcome.kind === "done") return outcome.results;
        last = outcome.failure;
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
          policyType: "sts",
          policyString: policyLines(sts),
          mxHost: sts.mx,
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

  /** One connection to one address: greeting, EHLO, STARTTLS, the TLS decision, the transaction. */
  private async session(
    attempt: DeliveryAttempt,
    host: MxHost,
    ip: string,
    policy: HostPolicy,
    plaintext: boolean,
  ): Promise<SessionOutcome> {
    const cfg = this.opts.config();
    const ob = cfg.outbound;
    const localAddress = isIPv6(ip) ? ob.sourceIpv6 : ob.sourceIpv4;
    const fields = { id: attempt.id, domain: attempt.domain, mx: host.name, ip, policy: policyLabel(policy) };
    const release = await this.slots.acquire(attempt.domain);
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
    let quitting = false;
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

      const observed = observe(conn);
      const verdict = judgeTls(policy, host.name, observed);
      const tlsLabel = observed.secure ? (observed.protocol ?? "tls") : "none";
      const socket = conn._socket;
      // The plaintext retry is the fallback for a handshake failure already counted.
      if (!plaintext)
        this.opts.tlsReport.record({
          policyDomain: attempt.domain,
          policyType: policyType(policy),
          ...(policy.type === "sts" ? { policyString: policyLines(policy.policy), mxHost: policy.policy.mx } : {}),
          ...(policy.type === "tlsa" ? { policyString: policy.records.map(tlsaToString) } : {}),
          result: verdict.result,
          receivingMxHostname: host.name,
          receivingIp: ip,
          ...(socket && socket.localAddress ? { sendingMtaIp: socket.localAddress } : {}),
          ...(verdict.result !== "success" && verdict.reason ? { failureReasonCode: verdict.reason } : {}),
        });
      if (verdict.block) {
        this.opts.log.warn("outbound.tls", { ...fields, tls: tlsLabel, result: verdict.result, reason: verdict.reason });
        quitting = true;
        conn.quit();
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

      const results = await this.transaction(conn, attempt, host.name);
      const summary = results
        .map((r) => r.status)
        .sort()
        .filter((s, i, a) => a.indexOf(s) === i)
        .join(",");
      this.opts.log.info("outbound.delivery", {
        ...fields,
        tls: tlsLabel,
        result: summary,
        recipients: results.length,
        reply: results[0]?.diagnostic,
      });
      quitting = true;
      conn.quit();
      return { kind: "done", results };
    } finally {
      if (!quitting) conn.close();
      await closed(conn, ob.timeoutMs);
      release();
    }
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
        policyType: policyType(policy),
        ...(policy.type === "sts" ? { policyString: policyLines(policy.policy), mxHost: policy.policy.mx } : {}),
        ...(policy.type === "tlsa" ? { policyString: policy.records.map(tlsaToString) } : {}),
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
  private transaction(conn: SMTPConnection, attempt: DeliveryAttempt, mx: string): Promise<RecipientResult[]> {
    return new Promise((resolve) => {
      const message = createReadStream(attempt.messagePath);
      // DATA is only sent once a recipient was accepted: nodemailer stops after the RCPT replies
      // when all were refused (with PIPELINING the DATA command travels with them, RFC 2920 3.1,
      // and the server refuses it; no message content is sent either way).
      conn.send({ from: attempt.sender, to: attempt.recipients, size: attempt.size, use8BitMime: true }, message, (err, info) => {
        message.destroy();
        // A message that could not be read may be cut off inside DATA: drop the connection so
        // nothing sent later (QUIT) can become part of it or end it with a dot.
        if ((err as SmtpError | null)?.code === "ESTREAM") conn.close();
        if (!err) {
          const rejected = new Map((info.rejectedErrors ?? []).map((e) => [(e as SmtpError).recipient, e as SmtpError]));
          resolve(
            attempt.recipients.map((r) => {
              const e = rejected.get(r);
              if (e?.response) return resultFromReply(r, e.response, mx);
              if (info.accepted.includes(r)) return resultFromReply(r, info.response, mx);
              return {
                recipient: r,
                status: "deferred",
                enhancedCode: "4.4.2",
                diagnostic: "no reply for this recipient",
                remoteReply: false,
                remoteMta: mx,
              };
            }),
          );
          return;
        }
        resolve(this.failedTransaction(conn, attempt, mx, err as SmtpError));
      });
    });
  }

  private failedTransaction(conn: SMTPConnection, attempt: DeliveryAttempt, mx: string, err: SmtpError): RecipientResult[] {
    // MAIL FROM refused: its reply is every recipient's (pipelined RCPTs only got "need MAIL").
    if (err.command === "MAIL FROM" && err.response) return attempt.recipients.map((r) => resultFromReply(r, err.response!, mx));
    if (err.command === "MAIL FROM" && err.code === "EMESSAGE") {
      // RFC 1870: the server announced a SIZE limit below the message's size.
      return everyone(attempt, "failed", {
        enhancedCode: "5.3.4",
        diagnostic: `message size ${attempt.size} exceeds the size limit of ${mx}: ${err.message}`,
        remoteReply: false,
        remoteMta: mx,
      });
    }
    // RCPT replies: on the error when every recipient was refused, otherwise on the connection's
    // envelope (nodemailer keeps them there but does not attach them to a DATA failure).
    const envelope = (conn as unknown as { _envelope?: { rejectedErrors?: SmtpError[] } })._envelope;
    const refused = new Map((err.rejectedErrors ?? envelope?.rejectedErrors ?? []).map((e) => [e.recipient, e]));
    return attempt.recipients.map((r): RecipientResult => {
      const own = refused.get(r);
      if (own?.response) return resultFromReply(r, own.response, mx);
      if (err.response) return resultFromReply(r, err.response, mx);
      if (err.code === "ESTREAM")
        return {
          recipient: r,
          status: "deferred",
          enhancedCode: "4.3.0",
          diagnostic: `cannot read the queued message: ${err.message}`,
          remoteReply: false,
        };
      // The connection broke mid-transaction (RFC 5321 4.1.1.4 / RFC 1047: it may even have
      // been after the server took the message; the queue accepts that duplicate risk).
      return {
        recipient: r,
        status: "deferred",
        enhancedCode: "4.4.2",
        diagnostic: `connection to ${mx} lost: ${err.message}`,
        remoteReply: false,
        remoteMta: mx,
      };
    });
  }
}

/** The TLS state of a connection after EHLO. */
function observe(conn: SMTPConnection): TlsObservation {
  const socket = conn._socket;
  if (!conn.secure || !(socket instanceof tls.TLSSocket)) return { secure: false, chain: [] };
  const chain: X509Certificate[] = [];
  const seen = new Set<string>();
  let cert: tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  while (cert && cert.raw && !seen.has(cert.fingerprint256)) {
    seen.add(cert.fingerprint256);
    chain.push(new X509Certificate(cert.raw));
    cert = cert.issuerCertificate;
  }
  // Node types it as an Error; at run time it is OpenSSL's code as a string.
  const authErr = socket.authorizationError as unknown as string | Error | null | undefined;
  const verifyError =
    typeof authErr === "string" ? authErr : authErr ? ((authErr as NodeJS.ErrnoException).code ?? authErr.message) : undefined;
  return { secure: true, chain, protocol: socket.getProtocol() ?? undefined, ...(verifyError ? { verifyError } : {}) };
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
