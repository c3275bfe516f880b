// The pinned SSH host key: what a deployment accepts from the server and how a refusal reads.
// Pure: wait-for-ssh.ts does the dialing.
import { createHash } from "node:crypto";

/** Host key algorithms a pin may name; RSA keys sign with SHA-2 where the server can (RFC 8332). */
const SIGNATURE_ALGORITHMS: Record<string, string[]> = {
  "ssh-ed25519": ["ssh-ed25519"],
  "ecdsa-sha2-nistp256": ["ecdsa-sha2-nistp256"],
  "ecdsa-sha2-nistp384": ["ecdsa-sha2-nistp384"],
  "ecdsa-sha2-nistp521": ["ecdsa-sha2-nistp521"],
  "ssh-rsa": ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
};

export interface PinnedHostKey {
  /** the key type, e.g. `ssh-ed25519` */
  type: string;
  /** the public key blob (RFC 4253 section 6.6), as the server sends it in the key exchange */
  blob: Buffer;
}

/** Reads an authorized_keys-style line, `ssh-ed25519 AAAA... [comment]`, as @pulumi/command's `hostKey` takes it. */
export function parsePinnedHostKey(text: string, name = "hostKey"): PinnedHostKey {
  const [type = "", data = ""] = text.trim().split(/\s+/);
  if (!(type in SIGNATURE_ALGORITHMS)) {
    throw new Error(
      `${name}: "${text.trim().slice(0, 40)}" is not an OpenSSH public key of type ${Object.keys(SIGNATURE_ALGORITHMS).join("|")}`,
    );
  }
  const blob = Buffer.from(data, "base64");
  if (blob.length === 0 || blob.toString("base64").replace(/=+$/, "") !== data.replace(/=+$/, "") || keyBlobType(blob) !== type) {
    throw new Error(`${name}: the base64 after "${type}" is not a ${type} public key`);
  }
  return { type, blob };
}

/** The type named inside a key blob (its first SSH string, RFC 4251 section 5); "" if malformed. */
export function keyBlobType(blob: Buffer): string {
  if (blob.length < 4) return "";
  const n = blob.readUInt32BE(0);
  return n > 0 && n <= 64 && 4 + n <= blob.length ? blob.subarray(4, 4 + n).toString("latin1") : "";
}

/** The host key signature algorithms to offer, so the server answers with a key of the pinned type. */
export function hostKeyAlgorithms(pin: PinnedHostKey): string[] {
  return SIGNATURE_ALGORITHMS[pin.type];
}

/** OpenSSH's fingerprint of a key blob: `SHA256:` and unpadded base64 of its SHA-256. */
export function sha256Fingerprint(blob: Buffer): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/** `host:port`, with brackets around an IPv6 address as OpenSSH writes it. */
export function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

export function hostKeyMismatchMessage(address: string, presented: Buffer, pin: PinnedHostKey): string {
  const type = keyBlobType(presented) || "unknown type";
  return (
    `SSH host key mismatch at ${address}: the server presents ${type} ${sha256Fingerprint(presented)} ` +
    `but this stack pinned ${pin.type} ${sha256Fingerprint(pin.blob)}: the server was not created by this stack, ` +
    `or its host key changed; refusing to deploy. If it is this stack's server rebuilt outside Pulumi, ` +
    `replace it (\`pulumi up --replace <server URN>\`) so cloud-init installs the pinned key again.`
  );
}

export function noPinnedKeyTypeMessage(address: string, pin: PinnedHostKey): string {
  return (
    `SSH host key mismatch at ${address}: the server offers no ${pin.type} host key, but this stack pinned ` +
    `${pin.type} ${sha256Fingerprint(pin.blob)}: the server was not created by this stack, or its host keys changed; refusing to deploy.`
  );
}
