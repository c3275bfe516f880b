// DANE for SMTP (RFC 7672): TLSA records of an MX host, obtained with DNSSEC, say that the host
// must be reached over TLS and which certificate or key it must show. This file holds the
// decisions (which records count, does a certificate chain match them); the transport applies
// them to a live connection.
import { createHash, X509Certificate } from "node:crypto";
import { RCODE, RRTYPE, type AdQuery } from "./dns-ad";
import type { TlsResultType } from "./types";

export interface TlsaRecord {
  /** 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE (RFC 7218 names) */
  usage: number;
  /** 0 Cert (full certificate), 1 SPKI (SubjectPublicKeyInfo) */
  selector: number;
  /** 0 Full, 1 SHA2-256, 2 SHA2-512 */
  matchingType: number;
  data: Buffer;
}

/** TLSA RDATA (RFC 6698 2.1). */
export function parseTlsaRdata(rdata: Buffer): TlsaRecord {
  if (rdata.length < 4) throw new Error(`TLSA record of ${rdata.length} bytes is too short`);
  return { usage: rdata[0], selector: rdata[1], matchingType: rdata[2], data: Buffer.from(rdata.subarray(3)) };
}

/** Presentation form, as in a zone file and in a TLSRPT policy-string (RFC 8460 4.4). */
export function tlsaToString(r: TlsaRecord): string {
  return `${r.usage} ${r.selector} ${r.matchingType} ${r.data.toString("hex")}`;
}

const DIGEST_LENGTH: Record<number, number> = { 1: 32, 2: 64 };

/**
 * RFC 7672 3.1: SMTP clients use DANE-TA(2) and DANE-EE(3) only; PKIX-TA(0) and PKIX-EE(1) are
 * unusable, since MTAs share no set of trusted CAs. Unknown selectors and matching types are
 * unusable too (RFC 6698 4.1), as is a digest of the wrong length.
 */
export function isUsable(r: TlsaRecord): boolean {
  if (r.usage !== 2 && r.usage !== 3) return false;
  if (r.selector !== 0 && r.selector !== 1) return false;
  if (r.matchingType === 0) return r.data.length > 0;
  return DIGEST_LENGTH[r.matchingType] === r.data.length;
}

/** What DNS says about one MX host's TLSA records. */
export type TlsaLookup =
  /** a DNSSEC-validated, non-empty RRset: TLS is mandatory (RFC 7672 2.2) */
  | { kind: "secure"; records: TlsaRecord[] }
  /** no records, or records the resolver did not validate (insecure: RFC 7672 2.1.1 ignores them) */
  | { kind: "none" }
  /** the lookup failed (SERVFAIL, e.g. bogus signatures, or a timeout): RFC 7672 2.1.1 says not
   *  to use this host, since an attacker can provoke such failures to strip DANE */
  | { kind: "failed"; reason: string };

/** TLSA base name for an MX host and port (RFC 7672 2.2.3, RFC 6698 3). */
export function tlsaName(host: string, port: number): string {
  return `_${port}._tcp.${host}`;
}

export async function lookupTlsa(query: AdQuery, host: string, port: number): Promise<TlsaLookup> {
  const name = tlsaName(host, port);
  let answer;
  try {
    answer = await query(name, RRTYPE.TLSA);
  } catch (err) {
    return { kind: "failed", reason: `${name} TLSA: ${(err as Error).message}` };
  }
  if (answer.rcode === RCODE.NXDOMAIN) return { kind: "none" };
  if (answer.rcode !== RCODE.NOERROR) return { kind: "failed", reason: `${name} TLSA: DNS rcode ${answer.rcode}` };
  // The resolver follows CNAMEs (RFC 7672 2.2.3): the TLSA records at the end of the chain count.
  const records = answer.answers.filter((a) => a.type === RRTYPE.TLSA);
  if (records.length === 0 || !answer.authenticated) return { kind: "none" };
  try {
    return { kind: "secure", records: records.map((r) => parseTlsaRdata(r.data)) };
  } catch (err) {
    return { kind: "failed", reason: `${name} TLSA: ${(err as Error).message}` };
  }
}

/**
 * Whether an RRset is DNSSEC-secure: AD set on a NOERROR answer (data or NODATA) or NXDOMAIN.
 * Transport errors and SERVFAIL count as not secure; the caller then does without DANE for that
 * name, exactly as if it were unsigned (RFC 7672 2.2.1: an insecure MX RRset means no DANE).
 */
export async function isSecure(query: AdQuery, name: string, type: number): Promise<boolean> {
  try {
    const a = await query(name, type);
    return a.authenticated && (a.rcode === RCODE.NOERROR || a.rcode === RCODE.NXDOMAIN);
  } catch {
    return false;
  }
}

function associationData(cert: X509Certificate, selector: number): Buffer {
  return selector === 0 ? cert.raw : cert.publicKey.export({ type: "spki", format: "der" });
}

/** RFC 6698 2.1.2/2.1.3: the certificate (or its key) hashed as the record says equals its data. */
export function tlsaMatches(cert: X509Certificate, r: TlsaRecord): boolean {
  const data = associationData(cert, r.selector);
  const value =
    r.matchingType === 0
      ? data
      : createHash(r.matchingType === 1 ? "sha256" : "sha512")
          .update(data)
          .digest();
  return value.equals(r.data);
}

export type DaneVerdict = { ok: true; usage: 2 | 3 } | { ok: false; result: Exclude<TlsResultType, "success">; reason: string };

function withinValidity(cert: X509Certificate, now: Date): boolean {
  return new Date(cert.validFrom) <= now && now <= new Date(cert.validTo);
}

/**
 * Authenticates a server's certificate chain (leaf first, as presented) against usable TLSA
 * records of a secure RRset.
 * - DANE-EE(3), RFC 7672 3.1.1: the leaf certificate or its key must match; its names and its
 *   validity period are not checked (the DNS record is the authority).
 * - DANE-TA(2), RFC 7672 3.1.2: some certificate above the leaf must match; the leaf must chain
 *   to it by signature, the certificates below the trust anchor must be within their validity
 *   period (RFC 7671 5.2.2: ordinary path validation, the anchor's own dates aside), and the
 *   leaf must carry one of `names` (RFC 7672 3.2.2: the MX host name, wildcards per RFC 6125).
 */
export function verifyDane(chain: X509Certificate[], records: TlsaRecord[], names: string[], now = new Date()): DaneVerdict {
  const usable = records.filter(isUsable);
  if (chain.length === 0) return { ok: false, result: "validation-failure", reason: "the server presented no certificate" };
  const leaf = chain[0];
  if (usable.some((r) => r.usage === 3 && tlsaMatches(leaf, r))) return { ok: true, usage: 3 };

  let failure: DaneVerdict | undefined;
  for (let i = 1; i < chain.length; i++) {
    if (!usable.some((r) => r.usage === 2 && tlsaMatches(chain[i], r))) continue;
    let path = true;
    for (let j = 0; j < i && path; j++) path = chain[j].checkIssued(chain[j + 1]) && chain[j].verify(chain[j + 1].publicKey);
    if (!path) {
      failure ??= {
        ok: false,
        result: "validation-failure",
        reason: `the certificate chain does not lead to the DANE-TA anchor at depth ${i}`,
      };
      continue;
    }
    if (!chain.slice(0, i).every((c) => withinValidity(c, now))) {
      failure = {
        ok: false,
        result: "certificate-expired",
        reason: "a certificate below the DANE-TA anchor is outside its validity period",
      };
      continue;
    }
    if (!names.some((n) => leaf.checkHost(n, { wildcards: true, partialWildcards: false, multiLabelWildcards: false }) !== undefined)) {
      failure = { ok: false, result: "certificate-host-mismatch", reason: `the certificate is not valid for ${names.join(" or ")}` };
      continue;
    }
    return { ok: true, usage: 2 };
  }
  return failure ?? { ok: false, result: "tlsa-invalid", reason: "no TLSA record matches the certificate chain the server presented" };
}
