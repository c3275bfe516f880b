// DKIM key records (RFC 6376 3.6.1) for RSA and Ed25519 (RFC 8463) selectors.
import { createPublicKey, type KeyObject } from "node:crypto";
import type { DkimPublicKey } from "./types";

export type DkimAlgorithm = DkimPublicKey["algorithm"];

/**
 * The two selectors of one key generation. A new generation gets new selectors, so a key can be
 * rotated by publishing the next generation before signing with it (RFC 6376 3.1, selectors
 * exist to allow several keys at once).
 */
export function dkimSelectors(generation: string): { rsa: string; ed25519: string } {
  return { rsa: `${generation}-rsa`, ed25519: `${generation}-ed25519` };
}

/** The selector's owner name: `<selector>._domainkey.<domain>` (RFC 6376 3.6.2.1). */
export function dkimRecordName(selector: string, domain: string): string {
  return `${selector}._domainkey.${domain}`;
}

/**
 * The DKIM key record value (RFC 6376 3.6.1): `v=DKIM1` first, `k=` the key type (`rsa`, or
 * `ed25519` per RFC 8463 3.2), `p=` the base64 public key data.
 */
export function dkimTxt(key: DkimPublicKey): string {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(key.publicKeyB64) || key.publicKeyB64.length % 4 !== 0) {
    throw new Error(`dkim selector "${key.selector}": publicKeyB64 is not base64`);
  }
  if (key.algorithm === "ed25519") {
    const raw = Buffer.from(key.publicKeyB64, "base64");
    // RFC 8463 3.2: p= is the raw 32-byte Ed25519 key, not an SPKI structure.
    if (raw.length !== 32) {
      throw new Error(`dkim selector "${key.selector}": an Ed25519 key is 32 bytes, got ${raw.length}`);
    }
  } else if (key.algorithm !== "rsa") {
    throw new Error(`dkim selector "${key.selector}": algorithm "${String(key.algorithm)}" is not one of rsa|ed25519`);
  }
  return `v=DKIM1; k=${key.algorithm}; p=${key.publicKeyB64}`;
}

/**
 * The `p=` value for a key given as PEM (public or private key):
 * RSA: base64 of the SubjectPublicKeyInfo DER (RFC 6376 3.6.1);
 * Ed25519: base64 of the raw 32-byte public key (RFC 8463 3.2).
 */
export function dkimPublicKeyFromPem(pem: string, algorithm: DkimAlgorithm): string {
  const key = publicKeyFromPem(pem);
  if (key.asymmetricKeyType !== algorithm) {
    throw new Error(`DKIM key: expected an ${algorithm} key, got ${key.asymmetricKeyType ?? "an unknown key type"}`);
  }
  if (algorithm === "rsa") {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    // RFC 8301 3.2: verifiers must accept 1024-4096 bits and signers must use at least 1024.
    if (bits < 1024 || bits > 4096) {
      throw new Error(`DKIM key: RSA modulus of ${bits} bits is outside 1024..4096 (RFC 8301 3.2)`);
    }
    return key.export({ type: "spki", format: "der" }).toString("base64");
  }
  const jwk = key.export({ format: "jwk" });
  if (typeof jwk.x !== "string") throw new Error("DKIM key: Ed25519 key has no public part");
  return Buffer.from(jwk.x, "base64url").toString("base64");
}

/** The public key in a PEM holding a public or a private key. */
export function publicKeyFromPem(pem: string): KeyObject {
  try {
    // A private key PEM yields its public half (node:crypto derives it).
    return createPublicKey(pem);
  } catch (err) {
    throw new Error(`not a PEM public or private key: ${(err as Error).message}`);
  }
}
