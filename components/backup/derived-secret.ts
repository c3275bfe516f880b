// Secrets the stack needs as strings (the restic repository password, the Storage Box passwords),
// derived from private keys @pulumi/tls generates and keeps in the state: no @pulumi/random, and a
// secret changes only when its key is replaced. Each use has its own label, so one key never yields
// the same string twice. SHA-256 over the label and the key's PKCS#8 PEM: the PEM carries the key's
// 32 random bytes, so the result has 256 bits of entropy and reveals nothing of the key.
import { createHash } from "node:crypto";

/** 43 characters of base64url (A-Z a-z 0-9 - _). */
export function derivedSecret(privateKeyPem: string, label: string): string {
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(privateKeyPem)) throw new Error(`derivedSecret(${label}): not a PEM private key`);
  return createHash("sha256").update(`mailstack ${label}\n`).update(privateKeyPem).digest("base64url");
}

/**
 * A password Hetzner's Storage Box policy accepts (12-128 characters, upper and lower case, a digit
 * and one of its special characters, all from its alphabet: research hetzner.md sec. 9, from the
 * API docs' storage-boxes-password-policy): a fixed prefix with one of each class, then a derived
 * secret, whose base64url alphabet (with "-" and "_") lies inside Hetzner's.
 */
export function storageBoxPassword(privateKeyPem: string, label: string): string {
  return `Ms1-${derivedSecret(privateKeyPem, label)}`;
}
