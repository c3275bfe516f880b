// The PKCS#10 certificate request (RFC 2986) an ACME order is finalized with (RFC 8555 7.4), made
// and read with maintained libraries: acme-client's createCsr signs it (through @peculiar/x509
// and WebCrypto), @peculiar/x509 parses it and checks its signature. No signing code of our own.
//
// The Pulumi side does not make requests here: @pulumi/tls's CertRequest makes one from the
// stable certificate key and keeps it in the state (components/acme-certificate.ts), so the same
// request is an unchanged input on every run. The box makes one for each renewal it orders itself.
import { createHash, createPrivateKey, type KeyObject } from "node:crypto";
import * as acme from "acme-client";
import * as x509 from "@peculiar/x509";
import { checkCertificateNames } from "./certificate-names";

/** The curves a certificate key may use: those Let's Encrypt accepts (P-256, P-384), and RSA. */
const KEY_TYPES = ["prime256v1", "secp384r1", "rsa"];

function certificateKey(keyPem: string, where: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new Error(`${where}: not a PEM private key (${(err as Error).message})`);
  }
  const type = key.asymmetricKeyType === "ec" ? key.asymmetricKeyDetails?.namedCurve : key.asymmetricKeyType;
  if (!KEY_TYPES.includes(type ?? "")) {
    throw new Error(
      `${where}: a ${key.asymmetricKeyType === "ec" ? `ECDSA key on ${type}` : `${type} key`}; ECDSA P-256/P-384 and RSA are supported`,
    );
  }
  return key;
}

/**
 * A certificate request for `names` signed by `keyPem` (the first name also the subject CN when it
 * fits RFC 5280's 64 characters), as PEM. Each call signs anew: ECDSA signatures differ each time.
 */
export async function certificateRequestPem(keyPem: string, names: readonly string[], where = "certificateKeyPem"): Promise<string> {
  checkCertificateNames(names);
  const key = certificateKey(keyPem, where);
  // acme-client imports the key as PKCS#8; @pulumi/tls hands ECDSA keys over as SEC1.
  const pkcs8 = key.export({ type: "pkcs8", format: "pem" }).toString();
  const [, csr] = await acme.crypto.createCsr({ ...(names[0].length <= 64 ? { commonName: names[0] } : {}), altNames: [...names] }, pkcs8);
  return csr.toString();
}

export interface CertificateRequestInfo {
  /** the subjectAltName DNS names, in the request's order */
  names: string[];
  /** SHA-256 (hex) of the requested key's SubjectPublicKeyInfo (DANE 3 1 1, key-change detection) */
  spkiSha256: string;
}

/** Reads and checks a request: it parses, its signature verifies, and it asks for DNS names. */
export async function readCertificateRequest(text: string, where = "csrPem"): Promise<CertificateRequestInfo> {
  if (!/-----BEGIN CERTIFICATE REQUEST-----/.test(text)) throw new Error(`${where}: no "-----BEGIN CERTIFICATE REQUEST-----" block`);
  let request: x509.Pkcs10CertificateRequest;
  try {
    request = new x509.Pkcs10CertificateRequest(text);
  } catch (err) {
    throw new Error(`${where}: not a usable certificate request: ${(err as Error).message}`);
  }
  let verified: boolean;
  try {
    verified = await request.verify();
  } catch (err) {
    throw new Error(`${where}: not a usable certificate request: its signature cannot be checked (${(err as Error).message})`);
  }
  if (!verified) throw new Error(`${where}: not a usable certificate request: its signature does not verify`);
  // RFC 5280 4.2.1.6 subjectAltName, from the request's extensionRequest attribute (RFC 2985 5.4.2)
  const altNames = request.getExtension("2.5.29.17");
  const names = altNames
    ? new x509.SubjectAlternativeNameExtension(altNames.rawData).names.items.filter((n) => n.type === "dns").map((n) => n.value)
    : [];
  if (names.length === 0) throw new Error(`${where}: not a usable certificate request: it asks for no DNS name (subjectAltName)`);
  const spkiSha256 = createHash("sha256").update(Buffer.from(request.publicKey.rawData)).digest("hex");
  return { names, spkiSha256 };
}
