// What the renewal logic and the resource outputs need to know about an issued certificate chain.
import { X509Certificate, createHash, createPublicKey } from "node:crypto";

export interface CertificateInfo {
  notBefore: Date;
  notAfter: Date;
  /** DNS names from the subjectAltName, lowercase, sorted */
  names: string[];
  /** the issuer's distinguished name, as Node prints it */
  issuer: string;
  /** hex serial number */
  serialHex: string;
  /** SHA-256 (hex) of the leaf's SubjectPublicKeyInfo: DANE TLSA 3 1 1 and key-reuse checks */
  spkiSha256: string;
  /** RFC 9773 4.1 certificate identifier, when the leaf has an Authority Key Identifier */
  ariCertId?: string;
}

/** Split a PEM bundle into its certificates, in order. */
export function splitPemChain(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.map((b) => `${b}\n`) ?? [];
}

export function spkiSha256OfKey(keyPem: string): string {
  const der = createPublicKey(keyPem).export({ type: "spki", format: "der" });
  return createHash("sha256").update(der).digest("hex");
}

/** One DER element (X.690 8.1): its tag byte and where its contents lie in the buffer. */
interface DerElement {
  tag: number;
  start: number;
  end: number;
}

/** The elements inside der[start, end), in order; throws on a length that runs past the end. */
function derChildren(der: Buffer, start: number, end: number): DerElement[] {
  const out: DerElement[] = [];
  let pos = start;
  while (pos < end) {
    const tag = der[pos];
    // multi-byte tags (low five bits all set, X.690 8.1.2.4) do not occur in a certificate's structure
    if ((tag & 0x1f) === 0x1f) throw new Error("certificate: DER tag in long form");
    let length = der[pos + 1];
    let contents = pos + 2;
    if (length & 0x80) {
      const octets = length & 0x7f;
      if (octets === 0 || octets > 4) throw new Error("certificate: DER length not definite or too long");
      length = 0;
      for (let i = 0; i < octets; i++) length = length * 256 + der[contents + i];
      contents += octets;
    }
    if (contents + length > end) throw new Error("certificate: DER element runs past its parent");
    out.push({ tag, start: contents, end: contents + length });
    pos = contents + length;
  }
  return out;
}

/** 2.5.29.35, id-ce-authorityKeyIdentifier, as its DER OID contents */
const AKI_OID = Buffer.from([0x55, 0x1d, 0x23]);

/**
 * keyIdentifier of the Authority Key Identifier extension (RFC 5280 4.2.1.1), or undefined.
 * Node's X509Certificate does not expose it, so the extensions are read from the DER: Certificate
 * ::= SEQUENCE { tbsCertificate SEQUENCE { ..., extensions [3] EXPLICIT SEQUENCE OF Extension } }
 * (RFC 5280 4.1); Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET
 * STRING }; AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING OPTIONAL, ... }.
 * (A small reader rather than @peculiar/x509: that library was a few MiB of maild's heap for this.)
 */
export function authorityKeyIdentifier(der: Buffer): Buffer | undefined {
  const [certificate] = derChildren(der, 0, der.length);
  if (certificate?.tag !== 0x30) throw new Error("certificate: not a DER SEQUENCE");
  const [tbs] = derChildren(der, certificate.start, certificate.end);
  if (tbs?.tag !== 0x30) throw new Error("certificate: no tbsCertificate");
  const extensions = derChildren(der, tbs.start, tbs.end).find((e) => e.tag === 0xa3);
  if (!extensions) return undefined;
  const [list] = derChildren(der, extensions.start, extensions.end);
  for (const extension of list?.tag === 0x30 ? derChildren(der, list.start, list.end) : []) {
    const fields = derChildren(der, extension.start, extension.end);
    const id = fields[0];
    const value = fields[fields.length - 1];
    if (id?.tag !== 0x06 || !der.subarray(id.start, id.end).equals(AKI_OID) || value?.tag !== 0x04) continue;
    const [aki] = derChildren(der, value.start, value.end);
    const keyId = aki?.tag === 0x30 ? derChildren(der, aki.start, aki.end).find((e) => e.tag === 0x80) : undefined;
    return keyId ? Buffer.from(der.subarray(keyId.start, keyId.end)) : undefined;
  }
  return undefined;
}

/** RFC 9773 4.1: base64url(AKI keyIdentifier) "." base64url(DER serial number value octets). */
export function ariCertificateId(certPem: string): string | undefined {
  const cert = new X509Certificate(certPem);
  const aki = authorityKeyIdentifier(cert.raw);
  if (!aki) return undefined;
  let hex = cert.serialNumber.replace(/[^0-9a-fA-F]/g, "");
  if (hex.length % 2) hex = `0${hex}`;
  let serial = Buffer.from(hex, "hex");
  // DER INTEGERs are signed: a leading 0x00 keeps a high first bit positive, and is part of the ID
  if (serial[0] & 0x80) serial = Buffer.concat([Buffer.from([0]), serial]);
  return `${aki.toString("base64url")}.${serial.toString("base64url")}`;
}

/** Read the leaf (first certificate) of a PEM chain. */
export function readCertificateInfo(chainPem: string): CertificateInfo {
  const [leafPem] = splitPemChain(chainPem);
  if (!leafPem) throw new Error("certificate: no PEM certificate found in the chain");
  const leaf = new X509Certificate(leafPem);
  const names = (leaf.subjectAltName ?? "")
    .split(", ")
    .filter((s) => s.startsWith("DNS:"))
    .map((s) => s.slice(4).toLowerCase())
    .sort();
  const spki = leaf.publicKey.export({ type: "spki", format: "der" });
  return {
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
    names,
    issuer: leaf.issuer.replace(/\n/g, ", "),
    serialHex: leaf.serialNumber,
    spkiSha256: createHash("sha256").update(spki).digest("hex"),
    ariCertId: ariCertificateId(leafPem),
  };
}
