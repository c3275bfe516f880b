// OpenSSH key encodings, as golang.org/x/crypto/ssh writes them for @pulumi/tls (terraform-provider-tls
// internal/provider/common_key.go `setPublicKeyAttributes`, resource_private_key.go Create): the
// authorized_keys line (`ssh.MarshalAuthorizedKey`), the legacy MD5 and the SHA256 fingerprints,
// and the `openssh-key-v1` private key (`ssh.MarshalPrivateKey`, PROTOCOL.key in openssh-portable).
import { createHash, createPrivateKey, randomBytes, type KeyObject } from "node:crypto";

function sshString(data: Buffer | string): Buffer {
  const body = typeof data === "string" ? Buffer.from(data) : data;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

function uint32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** RFC 4251 5 mpint: two's complement, a leading zero byte when the top bit is set. */
function mpint(unsigned: Buffer): Buffer {
  let i = 0;
  while (i < unsigned.length - 1 && unsigned[i] === 0) i++;
  const trimmed = unsigned.subarray(i);
  return sshString(trimmed[0] & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

const b64u = (s: string) => Buffer.from(s, "base64url");

/** The SSH curve identifier of a Node named curve; undefined for curves SSH has none for (P-224). */
function sshCurve(namedCurve: string | undefined): string | undefined {
  return ({ "P-256": "nistp256", "P-384": "nistp384", "P-521": "nistp521" } as Record<string, string>)[namedCurve ?? ""];
}

/**
 * The key's SSH wire type and public blob (RFC 4253 6.6, RFC 5656 3.1, RFC 8709 4); undefined for
 * a key SSH cannot carry: x/crypto/ssh has no P-224 (resource_private_key.go
 * `prvKeySupportsOpenSSHMarshalling`), so @pulumi/tls leaves the OpenSSH outputs empty for it.
 */
export function sshPublicKey(key: KeyObject): { type: string; blob: Buffer } | undefined {
  if (key.asymmetricKeyType === "ec" && !["prime256v1", "secp384r1", "secp521r1"].includes(key.asymmetricKeyDetails?.namedCurve ?? "")) {
    return undefined;
  }
  const jwk = key.export({ format: "jwk" }) as Record<string, string>;
  if (jwk.kty === "OKP" && jwk.crv === "Ed25519") {
    return { type: "ssh-ed25519", blob: Buffer.concat([sshString("ssh-ed25519"), sshString(b64u(jwk.x))]) };
  }
  if (jwk.kty === "RSA") {
    return { type: "ssh-rsa", blob: Buffer.concat([sshString("ssh-rsa"), mpint(b64u(jwk.e)), mpint(b64u(jwk.n))]) };
  }
  if (jwk.kty === "EC") {
    const curve = sshCurve(jwk.crv);
    if (!curve) return undefined;
    const point = Buffer.concat([Buffer.from([4]), b64u(jwk.x), b64u(jwk.y)]);
    const type = `ecdsa-sha2-${curve}`;
    return { type, blob: Buffer.concat([sshString(type), sshString(curve), sshString(point)]) };
  }
  return undefined;
}

/** `ssh.MarshalAuthorizedKey`: `<type> <base64>\n`, no comment; "" when SSH has no form for the key. */
export function authorizedKey(key: KeyObject): string {
  const pub = sshPublicKey(key);
  return pub ? `${pub.type} ${pub.blob.toString("base64")}\n` : "";
}

/** `ssh.FingerprintLegacyMD5`: hex pairs joined by colons. */
export function fingerprintMd5(key: KeyObject): string {
  const pub = sshPublicKey(key);
  if (!pub) return "";
  return createHash("md5").update(pub.blob).digest("hex").match(/../g)!.join(":");
}

/** `ssh.FingerprintSHA256`: `SHA256:` and unpadded base64. */
export function fingerprintSha256(key: KeyObject): string {
  const pub = sshPublicKey(key);
  if (!pub) return "";
  return `SHA256:${createHash("sha256").update(pub.blob).digest("base64").replace(/=+$/, "")}`;
}

function pem(label: string, der: Buffer): string {
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/**
 * The unencrypted `openssh-key-v1` private key (PROTOCOL.key): cipher and KDF "none", one key,
 * two equal check words, the key's private fields, an empty comment, and padding 1, 2, 3... to a
 * multiple of 8. PEM-wrapped at 64 columns as Go's `pem.EncodeToMemory` does. "" when SSH has no
 * form for the key.
 */
export function opensshPrivateKey(privateKey: KeyObject): string {
  const pub = sshPublicKey(privateKey);
  if (!pub) return "";
  const jwk = privateKey.export({ format: "jwk" }) as Record<string, string>;
  let fields: Buffer;
  if (jwk.kty === "OKP") {
    const seed = b64u(jwk.d);
    const publicBytes = b64u(jwk.x);
    fields = Buffer.concat([sshString(publicBytes), sshString(Buffer.concat([seed, publicBytes]))]);
  } else if (jwk.kty === "RSA") {
    fields = Buffer.concat([
      mpint(b64u(jwk.n)),
      mpint(b64u(jwk.e)),
      mpint(b64u(jwk.d)),
      mpint(b64u(jwk.qi)),
      mpint(b64u(jwk.p)),
      mpint(b64u(jwk.q)),
    ]);
  } else {
    const curve = sshCurve(jwk.crv)!;
    const point = Buffer.concat([Buffer.from([4]), b64u(jwk.x), b64u(jwk.y)]);
    fields = Buffer.concat([sshString(curve), sshString(point), mpint(b64u(jwk.d))]);
  }
  const check = randomBytes(4).readUInt32BE(0);
  let body = Buffer.concat([uint32(check), uint32(check), sshString(pub.type), fields, sshString("")]);
  const padding: number[] = [];
  for (let i = 1; (body.length + padding.length) % 8 !== 0; i++) padding.push(i);
  body = Buffer.concat([body, Buffer.from(padding)]);
  const blob = Buffer.concat([
    Buffer.from("openssh-key-v1\0"),
    sshString("none"),
    sshString("none"),
    sshString(""),
    uint32(1),
    sshString(pub.blob),
    sshString(body),
  ]);
  return pem("OPENSSH PRIVATE KEY", blob);
}

/**
 * A private key in a form ssh2 parses (it reads openssh-key-v1 and the traditional PEM forms, not
 * PKCS#8): x/crypto/ssh `ParsePrivateKey` accepts all of PKCS#1, SEC1, PKCS#8 and OpenSSH, so a
 * PKCS#8 key is re-encoded rather than refused.
 */
export function privateKeyForSsh2(text: string): string {
  if (!/-----BEGIN PRIVATE KEY-----/.test(text)) return text;
  const key = createPrivateKey(text);
  if (key.asymmetricKeyType === "rsa") return key.export({ format: "pem", type: "pkcs1" }).toString();
  if (key.asymmetricKeyType === "ec") return key.export({ format: "pem", type: "sec1" }).toString();
  return opensshPrivateKey(key);
}
