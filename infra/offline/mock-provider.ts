// What the providers would answer on create, for the offline engine: numeric ids as Hetzner
// gives them, the addresses the user says Hetzner assigned, and real key pairs for @pulumi/tls
// (so DKIM and TLSA records in a plan are well-formed and verifiable).
import { createHash, generateKeyPairSync, type KeyObject } from "node:crypto";
import type * as pulumi from "@pulumi/pulumi";
import { mapFromWire } from "./property-values";
import { createCertRequest } from "./providers/tls";
import { rsaKeyPair, type KeyPairSource } from "./key-pool";

export interface MockProviderOptions {
  /** IPv4 Hetzner assigns to the primary IP; absent: UNKNOWN_IPV4 stands in */
  ipv4?: string;
  /** IPv6 /64 network Hetzner assigns (`2001:db8:1::`); absent: UNKNOWN_IPV6_NETWORK stands in */
  ipv6Network?: string;
  /** ACME account URL the CA assigned; absent: UNKNOWN_ACME_ACCOUNT stands in */
  acmeAccountUrl?: string;
  /** RSA key pairs made ahead (key-pool.ts); without it, or when none is ready, made on demand */
  keyPairs?: KeyPairSource;
}

/** Stand-ins printed as "unknown" by the plan: values no real assignment can have. */
export const UNKNOWN_IPV4 = "255.255.255.255";
export const UNKNOWN_IPV6_NETWORK = "ffff:ffff:ffff:ffff::";
/** The ACME account URL exists only once `pulumi up` registered the account. */
export const UNKNOWN_ACME_ACCOUNT = "https://acme-account.invalid/registered-at-pulumi-up";

type Algorithm = "RSA" | "ECDSA" | "ED25519";

/**
 * Generated keys are remembered per resource name for the life of the process, as Pulumi state
 * would keep them: two runs of the program see the same keys.
 */
const keyCache = new Map<string, Record<string, string>>();

export function mockProvider(options: MockProviderOptions): pulumi.runtime.Mocks {
  const ipv4 = options.ipv4 ?? UNKNOWN_IPV4;
  const ipv6Network = options.ipv6Network ?? UNKNOWN_IPV6_NETWORK;
  return {
    newResource(args) {
      // An imported resource keeps the id it is adopted by (the `import` option).
      const id = args.id ? args.id : String(numericId(`${args.type}/${args.name}`));
      const inputs = args.inputs as Record<string, unknown>;
      switch (args.type) {
        case "tls:index/privateKey:PrivateKey":
          return { id, state: { ...inputs, ...keyPair(args.name, inputs, options.keyPairs) } };
        case "tls:index/certRequest:CertRequest":
          // A real request for the key and names (the plan shows what it asks for).
          return createCertRequest(mapFromWire(inputs)).then(({ computed }) => ({ id, state: { ...inputs, ...computed } }));
        case "hcloud:index/primaryIp:PrimaryIp":
          return { id, state: { ...inputs, ipAddress: inputs.type === "ipv6" ? ipv6Network : ipv4 } };
        case "pulumi-nodejs:dynamic/mailstack:AcmeAccount":
          // AcmeAccount: the account URL comes from the CA at `pulumi up`.
          return { id, state: { ...inputs, accountUrl: options.acmeAccountUrl ?? UNKNOWN_ACME_ACCOUNT } };
        case "hcloud:index/server:Server":
          return { id, state: { ...inputs, ipv4Address: ipv4, ipv6Address: `${ipv6Network}1`, status: "running" } };
        case "hcloud:index/storageBox:StorageBox":
          // Hetzner names a Storage Box's account and host after its id (research hetzner.md sec. 9).
          return { id, state: { ...inputs, username: `u${id}`, server: `u${id}.your-storagebox.de` } };
        case "hcloud:index/storageBoxSubaccount:StorageBoxSubaccount": {
          const box = `u${String(inputs.storageBoxId)}`;
          return { id, state: { ...inputs, username: `${box}-sub1`, server: `${box}-sub1.your-storagebox.de` } };
        }
        case "pulumi-nodejs:dynamic/mailstack:StorageBoxAccess":
          // StorageBoxAccess: the Storage Box's host key is seen at the first login during `pulumi up`.
          return { id, state: { ...inputs, hostKey: keyPair("storage-box-host-key", { algorithm: "ED25519" }).publicKeyOpenssh.trim() } };
        default:
          return { id, state: inputs };
      }
    },
    call(args) {
      if (args.token === "cloudflare:index/getZone:getZone") {
        const name = (args.inputs as { filter?: { name?: string } }).filter?.name ?? "";
        const zoneId = createHash("sha256").update(`zone/${name}`).digest("hex").slice(0, 32);
        return { id: zoneId, zoneId, name, status: "active" };
      }
      return args.inputs;
    },
  };
}

/** Hetzner ids are integers; derive a stable one from the resource's identity. */
function numericId(identity: string): number {
  return (createHash("sha256").update(identity).digest().readUInt32BE(0) % 90_000_000) + 10_000_000;
}

function keyPair(name: string, inputs: Record<string, unknown>, keyPairs?: KeyPairSource): Record<string, string> {
  const algorithm = inputs.algorithm as Algorithm;
  const cacheKey = `${name}/${algorithm}/${inputs.rsaBits ?? ""}/${inputs.ecdsaCurve ?? ""}`;
  const cached = keyCache.get(cacheKey);
  if (cached) return cached;
  const { privateKey, publicKey } =
    algorithm === "RSA"
      ? rsaKeyPair(Number(inputs.rsaBits ?? 2048), keyPairs)
      : algorithm === "ECDSA"
        ? generateKeyPairSync("ec", { namedCurve: curveName(String(inputs.ecdsaCurve ?? "P224")) })
        : generateKeyPairSync("ed25519");
  const pkcs8 = privateKey.export({ format: "pem", type: "pkcs8" }).toString();
  const state = {
    privateKeyPem: traditionalPem(privateKey, algorithm) ?? pkcs8,
    privateKeyPemPkcs8: pkcs8,
    // The offline engine never logs in anywhere; the OpenSSH private form is only carried along.
    privateKeyOpenssh: pkcs8,
    publicKeyPem: publicKey.export({ format: "pem", type: "spki" }).toString(),
    publicKeyOpenssh: opensshPublicKey(publicKey, algorithm),
    publicKeyFingerprintSha256: `SHA256:${createHash("sha256")
      .update(publicKey.export({ format: "der", type: "spki" }))
      .digest("base64")
      .replace(/=+$/, "")}`,
  };
  keyCache.set(cacheKey, state);
  return state;
}

function curveName(curve: string): string {
  return ({ P224: "P-224", P256: "prime256v1", P384: "secp384r1", P521: "secp521r1" } as Record<string, string>)[curve] ?? "prime256v1";
}

/** @pulumi/tls's privateKeyPem is PKCS#1 for RSA and SEC1 for ECDSA; PKCS#8 for Ed25519. */
function traditionalPem(key: KeyObject, algorithm: Algorithm): string | undefined {
  if (algorithm === "RSA") return key.export({ format: "pem", type: "pkcs1" }).toString();
  if (algorithm === "ECDSA") return key.export({ format: "pem", type: "sec1" }).toString();
  return undefined;
}

function sshString(data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  return Buffer.concat([len, data]);
}

/** RFC 4253 6.6 / RFC 8709 public key blobs, in authorized_keys form. */
function opensshPublicKey(key: KeyObject, algorithm: Algorithm): string {
  const jwk = key.export({ format: "jwk" }) as Record<string, string>;
  const b64u = (s: string) => Buffer.from(s, "base64url");
  const mpint = (buf: Buffer) => sshString(buf[0] & 0x80 ? Buffer.concat([Buffer.from([0]), buf]) : buf);
  if (algorithm === "ED25519") {
    const blob = Buffer.concat([sshString(Buffer.from("ssh-ed25519")), sshString(b64u(jwk.x))]);
    return `ssh-ed25519 ${blob.toString("base64")}\n`;
  }
  if (algorithm === "RSA") {
    const blob = Buffer.concat([sshString(Buffer.from("ssh-rsa")), mpint(b64u(jwk.e)), mpint(b64u(jwk.n))]);
    return `ssh-rsa ${blob.toString("base64")}\n`;
  }
  const curve = ({ "P-256": "nistp256", "P-384": "nistp384", "P-521": "nistp521" } as Record<string, string>)[jwk.crv] ?? "nistp256";
  const point = Buffer.concat([Buffer.from([4]), b64u(jwk.x), b64u(jwk.y)]);
  const blob = Buffer.concat([sshString(Buffer.from(`ecdsa-sha2-${curve}`)), sshString(Buffer.from(curve)), sshString(point)]);
  return `ecdsa-sha2-${curve} ${blob.toString("base64")}\n`;
}
