// DANE TLSA for the SMTP server (RFC 7672, RFC 7671).
import { createHash } from "node:crypto";
import { publicKeyFromPem } from "./dkim";
import type { TlsaData } from "./types";

/**
 * SHA-256 (lowercase hex) of the DER SubjectPublicKeyInfo of a key given as a PEM public or
 * private key: the association data of TLSA selector 1, matching type 1.
 */
export function spkiSha256FromPem(pem: string): string {
  const der = publicKeyFromPem(pem).export({ type: "spki", format: "der" });
  return createHash("sha256").update(der).digest("hex");
}

/** TLSA owner `_<port>._tcp.<host>` (RFC 6698 3); for SMTP port 25 of the MX host (RFC 7672 2.2.3). */
export function tlsaRecordName(mailHost: string): string {
  return `_25._tcp.${mailHost}`;
}

/**
 * DANE-EE(3) SPKI(1) SHA2-256(1): the recommended form for SMTP (RFC 7672 3.1.1, RFC 7671 5.1):
 * it pins the server key, survives certificate renewals that keep the key, and ignores names and
 * expiry.
 *
 * The hex is upper case: Cloudflare returns TLSA content with upper-case hex whatever case was
 * sent (external-dns provider/cloudflare/cloudflare.go, TLSA parsing and its test), and hex is
 * case-insensitive (RFC 6698 2.2), so upper case is stable whether Cloudflare keeps `data` as sent
 * or upper-cases it too.
 */
export function tlsaData(spkiSha256Hex: string): TlsaData {
  if (!/^[0-9a-fA-F]{64}$/.test(spkiSha256Hex)) {
    throw new Error(`tlsSpkiSha256: "${spkiSha256Hex}" is not 64 hex digits (a SHA-256 digest)`);
  }
  return { usage: 3, selector: 1, matchingType: 1, certificate: spkiSha256Hex.toUpperCase() };
}

/** Presentation form `3 1 1 <HEX>`, as Cloudflare returns TLSA content (upper-case hex). */
export function tlsaContent(data: TlsaData): string {
  return `${data.usage} ${data.selector} ${data.matchingType} ${data.certificate.toUpperCase()}`;
}
