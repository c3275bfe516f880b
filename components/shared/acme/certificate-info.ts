// What the renewal logic and the resource outputs need to know about an issued certificate chain.
import { X509Certificate, createHash, createPublicKey } from "node:crypto";
import * as x509 from "@peculiar/x509";

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

/** keyIdentifier of the Authority Key Identifier extension (RFC 5280 4.2.1.1), or undefined. */
export function authorityKeyIdentifier(der: Buffer): Buffer | undefined {
  const extension = new x509.X509Certificate(der).getExtension(x509.AuthorityKeyIdentifierExtension);
  return extension?.keyId ? Buffer.from(extension.keyId, "hex") : undefined;
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
