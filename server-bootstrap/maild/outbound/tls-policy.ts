// The TLS rule for one MX host, strongest first, and the judgement of an established session:
//   DANE (RFC 7672): a DNSSEC-validated MX RRset, secure addresses and secure TLSA records make
//     STARTTLS mandatory and authenticate the certificate against the records. It takes
//     precedence over MTA-STS (RFC 8461 2).
//   MTA-STS (RFC 8461): enforce: only hosts the policy lists, only over STARTTLS with a
//     certificate valid for the host under the Web PKI; testing: deliver anyway, report.
//   Otherwise opportunistic (RFC 7435, RFC 3207): STARTTLS whenever offered, certificate
//     problems reported but not fatal.
// Pure: the transport (transport.ts) observes the session and acts on the verdict.
import * as tls from "node:tls";
import { X509Certificate } from "node:crypto";
import { isUsable, tlsaToString, verifyDane, type TlsaRecord } from "./dane";
import { policyLines, type StsPolicy } from "./mta-sts";
import { certificateResult, type TlsSessionOutcome } from "./tls-report";
import type { TlsResultType } from "./types";

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

export function requiresTls(p: HostPolicy): boolean {
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

/** Is an established connection's TLS good enough for the host's policy, and what is it counted as? */
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

/** The policy's name in logs and diagnostics. */
export function policyLabel(p: HostPolicy): string {
  if (p.type === "sts") return `sts-${p.policy.mode}`;
  return p.type === "tlsa" ? "dane" : "none";
}

/** RFC 8460 4.4: the "policy" part of a TLS report entry for sessions under `p`. */
export function reportedPolicy(p: HostPolicy): Pick<TlsSessionOutcome, "policyType" | "policyString" | "mxHost"> {
  if (p.type === "sts") return reportedStsPolicy(p.policy);
  if (p.type === "tlsa") return { policyType: "tlsa", policyString: p.records.map(tlsaToString) };
  return { policyType: "no-policy-found" };
}

export function reportedStsPolicy(p: StsPolicy): Pick<TlsSessionOutcome, "policyType" | "policyString" | "mxHost"> {
  return { policyType: "sts", policyString: policyLines(p), mxHost: p.mx };
}

/** The TLS state of a session after EHLO, from its socket (a TLSSocket once STARTTLS succeeded). */
export function observeTls(socket: unknown): TlsObservation {
  if (!(socket instanceof tls.TLSSocket)) return { secure: false, chain: [] };
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
