// The deployer's private key in a form ssh2 reads. @pulumi/command (Go) also takes PKCS#8
// (`BEGIN PRIVATE KEY`, what @pulumi/tls's privateKeyPem is for Ed25519); ssh2 does not, so
// PKCS#8 is rewritten: RSA to PKCS#1, ECDSA to SEC1, Ed25519 to OpenSSH's own format.
import { createPrivateKey, randomBytes, type KeyObject } from "node:crypto";
import { utils } from "ssh2";

const sshString = (data: Buffer | string): Buffer => {
  const body = Buffer.isBuffer(data) ? data : Buffer.from(data, "latin1");
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
};

/** openssh-key-v1, unencrypted (OpenSSH's PROTOCOL.key), of an Ed25519 key. */
function opensshEd25519(key: KeyObject): string {
  const jwk = key.export({ format: "jwk" }) as { d: string; x: string };
  const seed = Buffer.from(jwk.d, "base64url");
  const pub = Buffer.from(jwk.x, "base64url");
  const publicBlob = Buffer.concat([sshString("ssh-ed25519"), sshString(pub)]);
  const check = randomBytes(4);
  let secret = Buffer.concat([
    check,
    check,
    sshString("ssh-ed25519"),
    sshString(pub),
    sshString(Buffer.concat([seed, pub])),
    sshString(""),
  ]);
  // padded to the cipher block size ("none": 8) with bytes 1, 2, 3, ...
  const pad = (8 - (secret.length % 8)) % 8;
  secret = Buffer.concat([secret, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const body = Buffer.concat([
    Buffer.from("openssh-key-v1\0", "latin1"),
    sshString("none"),
    sshString("none"),
    sshString(""),
    Buffer.from([0, 0, 0, 1]),
    sshString(publicBlob),
    sshString(secret),
  ]);
  const lines = body.toString("base64").match(/.{1,70}/g) ?? [];
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join("\n")}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

/**
 * The key as ssh2 takes it, or an error naming what is wrong (never the key's content).
 * `name` is where the key came from.
 */
export function deployerKeyForSsh2(text: string, name: string): string {
  if (text.trim() === "") throw new Error(`${name}: expected the deployer's unencrypted OpenSSH or PEM private key, got nothing`);
  const parsed = utils.parseKey(text);
  if (!(parsed instanceof Error)) return text;
  if (text.includes("-----BEGIN PRIVATE KEY-----")) {
    let key: KeyObject;
    try {
      key = createPrivateKey(text);
    } catch (err) {
      throw new Error(`${name}: a PKCS#8 private key that does not parse (${(err as Error).message})`);
    }
    if (key.asymmetricKeyType === "ed25519") return opensshEd25519(key);
    if (key.asymmetricKeyType === "rsa") return key.export({ format: "pem", type: "pkcs1" }).toString();
    if (key.asymmetricKeyType === "ec") return key.export({ format: "pem", type: "sec1" }).toString();
    throw new Error(`${name}: a PKCS#8 ${key.asymmetricKeyType} key; SSH takes ed25519, rsa or ecdsa`);
  }
  throw new Error(`${name}: expected the deployer's unencrypted OpenSSH or PEM private key (${parsed.message})`);
}
