// The PKCS#10 certificate request (RFC 2986) an ACME order is finalized with (RFC 8555 7.4),
// made from the stable certificate key and the names, byte for byte the same every time.
//
// Why deterministic: the Pulumi side sends the CA a request instead of the certificate key, so
// the key never enters the certificate resource's state. The request is made in the program on
// every run; a request that changed from run to run would be a new input each time. RSA
// (PKCS#1 v1.5) and Ed25519 signatures are deterministic already; ECDSA is made so with the nonce
// of RFC 6979 3.2, which depends on the key and the message only, so two different messages never
// share a nonce (a shared nonce would reveal the key).
import { createECDH, createHash, createHmac, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import { checkCertificateNames } from "./certificate-names";
import {
  bytesOf,
  children,
  contentOf,
  objectIdentifier,
  pem,
  pemBody,
  readObjectIdentifier,
  readTlv,
  sequence,
  set,
  tlv,
  unsignedInteger,
} from "./der";

const OID = {
  commonName: "2.5.4.3", // RFC 5280 4.1.2.4 (X.520)
  extensionRequest: "1.2.840.113549.1.9.14", // RFC 2985 5.4.2
  subjectAltName: "2.5.29.17", // RFC 5280 4.2.1.6
  ecdsaWithSha256: "1.2.840.10045.4.3.2", // RFC 5758 3.2
  ecdsaWithSha384: "1.2.840.10045.4.3.3",
  sha256WithRsaEncryption: "1.2.840.113549.1.1.11", // RFC 4055 5
  ed25519: "1.3.101.112", // RFC 8410 3
} as const;

/** Curves with a hash as long as their order (qlen = hlen), so RFC 6979's bits2int is a plain conversion. */
const CURVES: Record<string, { order: bigint; bytes: number; hash: "sha256" | "sha384"; algorithm: string }> = {
  // SEC 2 2.4.2 and 2.5.1: the group order n
  prime256v1: {
    order: BigInt("0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551"),
    bytes: 32,
    hash: "sha256",
    algorithm: OID.ecdsaWithSha256,
  },
  secp384r1: {
    order: BigInt("0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973"),
    bytes: 48,
    hash: "sha384",
    algorithm: OID.ecdsaWithSha384,
  },
};

const toBigInt = (b: Buffer): bigint => BigInt(`0x${b.toString("hex") || "0"}`);
const toOctets = (v: bigint, bytes: number): Buffer => Buffer.from(v.toString(16).padStart(bytes * 2, "0"), "hex");

function modPow(base: bigint, exponent: bigint, modulus: bigint): bigint {
  let result = 1n;
  let b = base % modulus;
  for (let e = exponent; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % modulus;
    b = (b * b) % modulus;
  }
  return result;
}

/**
 * RFC 6979 3.2 nonces for private scalar `x` and message hash `h1`, for curves whose order has
 * as many bits as the hash (P-256 with SHA-256, P-384 with SHA-384): candidates in order.
 */
export function* rfc6979Nonces(curve: string, x: bigint, h1: Buffer): Generator<bigint> {
  const c = CURVES[curve];
  if (!c) throw new Error(`RFC 6979: curve ${curve} is not supported`);
  const hmac = (key: Buffer, ...data: Buffer[]) => createHmac(c.hash, key).update(Buffer.concat(data)).digest();
  const seed = Buffer.concat([toOctets(x, c.bytes), toOctets(toBigInt(h1) % c.order, c.bytes)]);
  let v = Buffer.alloc(c.bytes, 0x01);
  let k = Buffer.alloc(c.bytes, 0x00);
  k = hmac(k, v, Buffer.from([0x00]), seed);
  v = hmac(k, v);
  k = hmac(k, v, Buffer.from([0x01]), seed);
  v = hmac(k, v);
  for (;;) {
    v = hmac(k, v);
    const candidate = toBigInt(v);
    if (candidate >= 1n && candidate < c.order) yield candidate;
    k = hmac(k, v, Buffer.from([0x00]));
    v = hmac(k, v);
  }
}

/** ECDSA (FIPS 186-4 6.4) with the RFC 6979 nonce; returns r || s, each as long as the order. */
export function deterministicEcdsa(key: KeyObject, message: Buffer): Buffer {
  const curve = key.asymmetricKeyDetails?.namedCurve ?? "";
  const c = CURVES[curve];
  if (!c) throw new Error(`an ECDSA key on ${curve || "an unknown curve"}; P-256 and P-384 are supported`);
  const x = toBigInt(Buffer.from((key.export({ format: "jwk" }) as { d: string }).d, "base64url"));
  const h1 = createHash(c.hash).update(message).digest();
  const e = toBigInt(h1);
  for (const k of rfc6979Nonces(curve, x, h1)) {
    // k*G through the platform's own curve arithmetic: the "public key" of private scalar k.
    const ecdh = createECDH(curve);
    ecdh.setPrivateKey(toOctets(k, c.bytes));
    const r = toBigInt(ecdh.getPublicKey().subarray(1, 1 + c.bytes)) % c.order;
    if (r === 0n) continue;
    const s = (modPow(k, c.order - 2n, c.order) * ((e + r * x) % c.order)) % c.order;
    if (s === 0n) continue;
    return Buffer.concat([toOctets(r, c.bytes), toOctets(s, c.bytes)]);
  }
  throw new Error("unreachable: RFC 6979 yields nonces without end");
}

/** The signature algorithm identifier and the signature value of `message` under `key`. */
function deterministicSignature(key: KeyObject, message: Buffer): { algorithm: Buffer; signature: Buffer } {
  switch (key.asymmetricKeyType) {
    case "ec": {
      const c = CURVES[key.asymmetricKeyDetails?.namedCurve ?? ""];
      const rs = deterministicEcdsa(key, message);
      // Checked with the platform before use: a wrong signature would only be refused by the CA.
      if (!verify(c.hash, message, { key: createPublicKey(key), dsaEncoding: "ieee-p1363" }, rs)) {
        throw new Error("the deterministic ECDSA signature does not verify");
      }
      const der = sequence(unsignedInteger(rs.subarray(0, c.bytes)), unsignedInteger(rs.subarray(c.bytes)));
      return { algorithm: sequence(objectIdentifier(c.algorithm)), signature: der };
    }
    case "rsa":
      // RFC 4055 5: the parameters are NULL
      return {
        algorithm: sequence(objectIdentifier(OID.sha256WithRsaEncryption), Buffer.from([0x05, 0x00])),
        signature: sign("sha256", message, key),
      };
    case "ed25519":
      return { algorithm: sequence(objectIdentifier(OID.ed25519)), signature: sign(null, message, key) };
    default:
      throw new Error(`a ${key.asymmetricKeyType} key; certificate keys are ECDSA P-256/P-384, RSA or Ed25519`);
  }
}

/**
 * The certificate request for `names` (the first also as the subject CN when it fits RFC 5280's
 * 64 characters) signed by `keyPem`, as PEM. The same key and names give the same bytes.
 */
export function certificateRequestPem(keyPem: string, names: readonly string[], where = "certificateKeyPem"): string {
  checkCertificateNames(names);
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new Error(`${where}: not a PEM private key (${(err as Error).message})`);
  }
  const spki = createPublicKey(key).export({ type: "spki", format: "der" });
  const subject =
    names[0].length <= 64
      ? sequence(set(sequence(objectIdentifier(OID.commonName), tlv(0x0c, Buffer.from(names[0], "utf8")))))
      : sequence();
  // dNSName is [2] IMPLICIT IA5String (RFC 5280 4.2.1.6)
  const altNames = sequence(...names.map((n) => tlv(0x82, Buffer.from(n, "ascii"))));
  const extensions = sequence(sequence(objectIdentifier(OID.subjectAltName), tlv(0x04, altNames)));
  // attributes [0] IMPLICIT SET OF Attribute (RFC 2986 4.1)
  const attributes = tlv(0xa0, sequence(objectIdentifier(OID.extensionRequest), set(extensions)));
  const info = sequence(unsignedInteger(Buffer.from([0])), subject, spki, attributes);
  let signed: { algorithm: Buffer; signature: Buffer };
  try {
    signed = deterministicSignature(key, info);
  } catch (err) {
    throw new Error(`${where}: ${(err as Error).message}`);
  }
  const request = sequence(info, signed.algorithm, tlv(0x03, Buffer.from([0x00]), signed.signature));
  return pem("CERTIFICATE REQUEST", request);
}

export interface CertificateRequestInfo {
  /** the subjectAltName DNS names, in the request's order */
  names: string[];
  /** SHA-256 (hex) of the requested key's SubjectPublicKeyInfo (DANE 3 1 1, key-change detection) */
  spkiSha256: string;
}

const HASH_OF_ALGORITHM: Record<string, string | null> = {
  [OID.ecdsaWithSha256]: "sha256",
  [OID.ecdsaWithSha384]: "sha384",
  [OID.sha256WithRsaEncryption]: "sha256",
  [OID.ed25519]: null,
};

/** Reads and checks a request: it parses, its signature verifies, and it asks for DNS names. */
export function readCertificateRequest(text: string, where = "csrPem"): CertificateRequestInfo {
  const der = pemBody(text, "CERTIFICATE REQUEST");
  if (!der) throw new Error(`${where}: no "-----BEGIN CERTIFICATE REQUEST-----" block`);
  try {
    const [infoTlv, algorithmTlv, signatureTlv] = children(der, readTlv(der, 0));
    const info = children(der, infoTlv);
    const spkiDer = bytesOf(der, info[2]);
    const publicKey = createPublicKey({ key: spkiDer, format: "der", type: "spki" });
    const algorithm = readObjectIdentifier(contentOf(der, children(der, algorithmTlv)[0]));
    if (!(algorithm in HASH_OF_ALGORITHM)) throw new Error(`signature algorithm ${algorithm} is not supported`);
    const signature = contentOf(der, signatureTlv).subarray(1);
    if (!verify(HASH_OF_ALGORITHM[algorithm], bytesOf(der, infoTlv), publicKey, signature)) {
      throw new Error("its signature does not verify");
    }
    const names: string[] = [];
    const attributes = info.find((t) => t.tag === 0xa0);
    for (const attribute of attributes ? children(der, attributes) : []) {
      const [type, values] = children(der, attribute);
      if (readObjectIdentifier(contentOf(der, type)) !== OID.extensionRequest) continue;
      for (const extension of children(der, children(der, values)[0])) {
        const parts = children(der, extension);
        if (readObjectIdentifier(contentOf(der, parts[0])) !== OID.subjectAltName) continue;
        const value = contentOf(der, parts[parts.length - 1]);
        for (const name of children(value, readTlv(value, 0))) {
          if (name.tag === 0x82) names.push(contentOf(value, name).toString("ascii"));
        }
      }
    }
    if (names.length === 0) throw new Error("it asks for no DNS name (subjectAltName)");
    const spkiSha256 = createHash("sha256")
      .update(publicKey.export({ type: "spki", format: "der" }))
      .digest("hex");
    return { names, spkiSha256 };
  } catch (err) {
    throw new Error(`${where}: not a usable certificate request: ${(err as Error).message}`);
  }
}
