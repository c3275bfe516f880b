// @pulumi/tls 5.x (terraform-provider-tls, plugin framework, bridged) as a stand-in: PrivateKey,
// SelfSignedCert and CertRequest, the types components/ uses. Keys are real, in every encoding the
// provider returns, so what the program derives from them (DKIM and TLSA records, the pinned SSH
// host key, the deployer's login) works against real servers.
// Source: hashicorp/terraform-provider-tls d72d90e1 (v4.2.1+23) internal/provider/
// resource_private_key.go, common_key.go, resource_self_signed_cert.go, resource_cert_request.go,
// common_cert.go, common.go.
import { createHash, createPrivateKey, createPublicKey, generateKeyPair, webcrypto, type KeyObject } from "node:crypto";
import { isIP } from "node:net";
import { promisify } from "node:util";
import * as x509 from "@peculiar/x509";
import { Unknown, type CheckFailure, type DiffResult, type PropertyMap, type ProviderStandIn } from "../model";
import { bridgedCheck, bridgedDiff, bridgedOutputs, unknownComputed, type BridgedResourceSchema } from "./bridge";
import { authorizedKey, fingerprintMd5, fingerprintSha256, opensshPrivateKey } from "./ssh-key-format";
import { containsUnknown, isAbsent, ProviderCallError, reveal } from "./property";

export const PRIVATE_KEY = "tls:index/privateKey:PrivateKey";
export const SELF_SIGNED_CERT = "tls:index/selfSignedCert:SelfSignedCert";
export const CERT_REQUEST = "tls:index/certRequest:CertRequest";

const ALGORITHMS = ["RSA", "ECDSA", "ED25519"];
const CURVES = ["P224", "P256", "P384", "P521"];

/** resource_private_key.go privateKeyResourceSchemaV1: every input RequiresReplace; defaults 2048 and P224. */
export const privateKeySchema: BridgedResourceSchema = {
  framework: "pf",
  properties: {
    algorithm: { forceNew: true },
    rsaBits: { forceNew: true, computed: true, default: 2048 },
    ecdsaCurve: { forceNew: true, computed: true, default: "P224" },
    privateKeyPem: { outputOnly: true, sensitive: true },
    privateKeyPemPkcs8: { outputOnly: true, sensitive: true },
    privateKeyOpenssh: { outputOnly: true, sensitive: true },
    publicKeyPem: { outputOnly: true },
    publicKeyOpenssh: { outputOnly: true },
    publicKeyFingerprintMd5: { outputOnly: true },
    publicKeyFingerprintSha256: { outputOnly: true },
  },
};

/**
 * resource_self_signed_cert.go Schema: everything replaces except `early_renewal_hours` (no plan
 * modifier); `private_key_pem` replaces when the state holds a PEM (common.go
 * `requireReplaceIfStateContainsPEMString`).
 */
export const selfSignedCertSchema: BridgedResourceSchema = {
  framework: "pf",
  properties: {
    privateKeyPem: { forceNew: true, sensitive: true },
    validityPeriodHours: { forceNew: true },
    allowedUses: { forceNew: true },
    dnsNames: { forceNew: true },
    ipAddresses: { forceNew: true },
    uris: { forceNew: true },
    subject: { forceNew: true },
    earlyRenewalHours: { computed: true, default: 0 },
    isCaCertificate: { forceNew: true, computed: true, default: false },
    maxPathLength: { forceNew: true, computed: true },
    setSubjectKeyId: { forceNew: true, computed: true, default: false },
    setAuthorityKeyId: { forceNew: true, computed: true, default: false },
    certPem: { outputOnly: true },
    readyForRenewal: { outputOnly: true },
    validityStartTime: { outputOnly: true },
    validityEndTime: { outputOnly: true },
    keyAlgorithm: { outputOnly: true },
  },
};

/**
 * resource_cert_request.go Schema: every input RequiresReplace (`dns_names`, `ip_addresses`, `uris`,
 * the `subject` block and each of its attributes: listplanmodifier/stringplanmodifier
 * RequiresReplace; `private_key_pem`: requireReplaceIfStateContainsPEMString, common.go); the
 * computed `key_algorithm` and `cert_request_pem` keep their state (UseStateForUnknown). So the
 * request, signed once in Create with crypto/rand, stays in the state until an input changes.
 */
export const certRequestSchema: BridgedResourceSchema = {
  framework: "pf",
  properties: {
    privateKeyPem: { forceNew: true, sensitive: true },
    dnsNames: { forceNew: true },
    ipAddresses: { forceNew: true },
    uris: { forceNew: true },
    subject: { forceNew: true },
    certRequestPem: { outputOnly: true },
    keyAlgorithm: { outputOnly: true },
  },
};

/** common_cert.go keyUsages and extendedKeyUsages. */
const KEY_USAGES: Record<string, x509.KeyUsageFlags> = {
  digital_signature: x509.KeyUsageFlags.digitalSignature,
  content_commitment: x509.KeyUsageFlags.nonRepudiation,
  key_encipherment: x509.KeyUsageFlags.keyEncipherment,
  data_encipherment: x509.KeyUsageFlags.dataEncipherment,
  key_agreement: x509.KeyUsageFlags.keyAgreement,
  cert_signing: x509.KeyUsageFlags.keyCertSign,
  crl_signing: x509.KeyUsageFlags.cRLSign,
  encipher_only: x509.KeyUsageFlags.encipherOnly,
  decipher_only: x509.KeyUsageFlags.decipherOnly,
};
const EXTENDED_KEY_USAGES: Record<string, string> = {
  any_extended: "2.5.29.37.0",
  server_auth: "1.3.6.1.5.5.7.3.1",
  client_auth: "1.3.6.1.5.5.7.3.2",
  code_signing: "1.3.6.1.5.5.7.3.3",
  email_protection: "1.3.6.1.5.5.7.3.4",
  ipsec_end_system: "1.3.6.1.5.5.7.3.5",
  ipsec_tunnel: "1.3.6.1.5.5.7.3.6",
  ipsec_user: "1.3.6.1.5.5.7.3.7",
  timestamping: "1.3.6.1.5.5.7.3.8",
  ocsp_signing: "1.3.6.1.5.5.7.3.9",
  microsoft_server_gated_crypto: "1.3.6.1.4.1.311.10.3.3",
  netscape_server_gated_crypto: "2.16.840.1.113730.4.1",
  microsoft_commercial_code_signing: "1.3.6.1.4.1.311.2.1.22",
  microsoft_kernel_code_signing: "1.3.6.1.4.1.311.61.1.1",
};

export interface TlsStandInOptions {
  /** the clock certificates are issued and judged for renewal by; default: now */
  now?: () => Date;
}

export function tlsStandIn(options: TlsStandInOptions = {}): ProviderStandIn {
  const now = options.now ?? (() => new Date());
  return {
    pkg: "tls",
    async check(ctx, type, olds, news) {
      const failures: CheckFailure[] = [];
      if (type === PRIVATE_KEY) checkPrivateKey(news, failures);
      else if (type === SELF_SIGNED_CERT) checkSelfSignedCert(news, failures);
      else if (type === CERT_REQUEST) checkCertRequest(news, failures);
      else throw unsupported(type);
      return { inputs: bridgedCheck(schemaOf(type), ctx.urn, olds, news), failures };
    },
    async diff(_ctx, type, _id, oldInputs, oldOutputs, news, ignoreChanges): Promise<DiffResult> {
      const result = bridgedDiff(schemaOf(type), oldInputs, oldOutputs, news, ignoreChanges);
      if (type === SELF_SIGNED_CERT && readyForRenewal(oldOutputs, news, now())) {
        // common_cert.go modifyPlanIfCertificateReadyForRenewal: inside the early-renewal window
        // `ready_for_renewal` becomes unknown and RequiresReplace.
        result.changes = "some";
        if (!result.changedKeys.includes("readyForRenewal")) result.changedKeys.push("readyForRenewal");
        result.replaceKeys.push("readyForRenewal");
        result.detailedDiff.readyForRenewal = { kind: "update", replace: true };
      }
      return result;
    },
    async create(ctx, type, inputs) {
      const schema = schemaOf(type);
      if (ctx.preview) return { id: Unknown, outputs: bridgedOutputs(schema, inputs, unknownComputed(schema)) };
      if (type === PRIVATE_KEY) {
        const key = await generatePrivateKey(inputs);
        return { id: key.id, outputs: bridgedOutputs(schema, inputs, key.computed) };
      }
      if (type === CERT_REQUEST) {
        const request = await createCertRequest(inputs);
        return { id: request.id, outputs: bridgedOutputs(schema, inputs, request.computed) };
      }
      const cert = await createSelfSignedCert(inputs, now());
      return { id: cert.id, outputs: bridgedOutputs(schema, inputs, cert.computed) };
    },
    async read(_ctx, type, id, inputs, outputs) {
      schemaOf(type);
      // None of them implements ImportState (resource_private_key.go, resource_self_signed_cert.go,
      // resource_cert_request.go): Read only returns what the state holds.
      if (!outputs) throw new ProviderCallError(`${type} does not support import: it keeps no state outside Pulumi`);
      const refreshed = { ...outputs };
      if (type === SELF_SIGNED_CERT && readyForRenewal(outputs, outputs, now())) refreshed.readyForRenewal = true;
      return { id, inputs: inputs ?? {}, outputs: refreshed };
    },
    async update(ctx, type, _id, _oldInputs, oldOutputs, news) {
      // PrivateKey Update is a no-op; SelfSignedCert's and CertRequest's `updatedUsingPlan` write the
      // plan into the state (only SelfSignedCert's early_renewal_hours can change in place).
      const schema = schemaOf(type);
      const computed: PropertyMap = {};
      for (const [k, p] of Object.entries(schema.properties)) if (p.outputOnly && k in oldOutputs) computed[k] = oldOutputs[k];
      if (ctx.preview) return { outputs: bridgedOutputs(schema, news, computed) };
      return { outputs: bridgedOutputs(schema, news, computed) };
    },
    async delete() {
      // They only leave the state (Delete is a no-op in all three files).
    },
  };
}

function schemaOf(type: string): BridgedResourceSchema {
  if (type === PRIVATE_KEY) return privateKeySchema;
  if (type === SELF_SIGNED_CERT) return selfSignedCertSchema;
  if (type === CERT_REQUEST) return certRequestSchema;
  throw unsupported(type);
}

function unsupported(type: string): Error {
  return new ProviderCallError(
    `the tls stand-in has no resource type ${type} (it models ${PRIVATE_KEY}, ${SELF_SIGNED_CERT} and ${CERT_REQUEST})`,
  );
}

/** stringvalidator.OneOf's message (terraform-plugin-framework-validators). */
function oneOfFailure(property: string, allowed: string[], got: unknown): CheckFailure {
  return {
    property,
    reason: `Attribute ${property} value must be one of: [${allowed.map((a) => JSON.stringify(a)).join(" ")}], got: ${JSON.stringify(got)}`,
  };
}

function checkPrivateKey(news: PropertyMap, failures: CheckFailure[]): void {
  const algorithm = reveal(news.algorithm);
  if (isAbsent(algorithm)) failures.push({ property: "algorithm", reason: "Missing required argument: algorithm" });
  else if (algorithm !== Unknown && !ALGORITHMS.includes(String(algorithm)))
    failures.push(oneOfFailure("algorithm", ALGORITHMS, algorithm));
  const curve = reveal(news.ecdsaCurve);
  if (!isAbsent(curve) && curve !== Unknown && !CURVES.includes(String(curve))) failures.push(oneOfFailure("ecdsaCurve", CURVES, curve));
}

function checkSelfSignedCert(news: PropertyMap, failures: CheckFailure[]): void {
  const hours = reveal(news.validityPeriodHours);
  if (isAbsent(hours)) failures.push({ property: "validityPeriodHours", reason: "Missing required argument: validityPeriodHours" });
  else if (hours !== Unknown && !(Number(hours) >= 0)) {
    failures.push({ property: "validityPeriodHours", reason: `Attribute validity_period_hours value must be at least 0, got: ${hours}` });
  }
  const uses = reveal(news.allowedUses);
  if (isAbsent(uses)) failures.push({ property: "allowedUses", reason: "Missing required argument: allowedUses" });
  else if (Array.isArray(uses)) {
    const allowed = [...Object.keys(KEY_USAGES), ...Object.keys(EXTENDED_KEY_USAGES)];
    uses.forEach((u, i) => {
      if (u !== Unknown && !allowed.includes(String(u))) failures.push(oneOfFailure(`allowedUses[${i}]`, allowed, u));
    });
  }
  if (isAbsent(reveal(news.privateKeyPem)) && isAbsent(reveal(news.privateKeyPemWo))) {
    failures.push({
      property: "privateKeyPem",
      reason: "Exactly one of these attributes must be configured: [private_key_pem,private_key_pem_wo]",
    });
  }
}

function checkCertRequest(news: PropertyMap, failures: CheckFailure[]): void {
  // resource_cert_request.go at d72d90e1: private_key_pem is Required. @pulumi/tls 5.6.1 also offers
  // privateKeyPemWo (a write-only alternative from a later provider), which is not modelled here.
  if (!isAbsent(reveal(news.privateKeyPemWo))) {
    failures.push({ property: "privateKeyPemWo", reason: "the offline tls stand-in does not model privateKeyPemWo; use privateKeyPem" });
  }
  if (isAbsent(reveal(news.privateKeyPem)))
    failures.push({ property: "privateKeyPem", reason: "Missing required argument: privateKeyPem" });
  for (const property of ["ipAddresses", "uris"]) {
    const values = reveal(news[property]);
    // listvalidator.ValueStringsAre(stringvalidator.LengthAtLeast(1))
    if (Array.isArray(values)) {
      values.forEach((v, i) => {
        if (v !== Unknown && String(v).length < 1)
          failures.push({ property: `${property}[${i}]`, reason: `Attribute ${property}[${i}] string length must be at least 1, got: 0` });
      });
    }
  }
}

/** common_key.go parsePrivateKeyPEM, as far as its errors go: the PEM block, then the key in it. */
function parsePrivateKeyPem(pem: string): KeyObject {
  if (!/^-----BEGIN [A-Z ]+-----/.test(pem.trimStart())) {
    throw new ProviderCallError(
      `Failed to parse private key PEM: failed to decode PEM block: decoded bytes 0, undecoded ${Buffer.byteLength(pem)}`,
    );
  }
  try {
    return createPrivateKey(pem);
  } catch (error) {
    throw new ProviderCallError(`Failed to parse private key PEM: ${(error as Error).message}`);
  }
}

/** The WebCrypto key pair of a private key, for @peculiar/x509's generators. */
async function cryptoKeyPair(key: KeyObject): Promise<{ keys: webcrypto.CryptoKeyPair; signing: webcrypto.Algorithm }> {
  const { signing, verify } = webCryptoAlgorithms(key);
  const subtle = webcrypto.subtle;
  const privateKey = await subtle.importKey("pkcs8", key.export({ format: "der", type: "pkcs8" }), signing, false, ["sign"]);
  const publicKey = await subtle.importKey("spki", createPublicKey(key).export({ format: "der", type: "spki" }), signing, true, [verify]);
  return { keys: { privateKey, publicKey }, signing };
}

const algorithmOf = (key: KeyObject) => (key.asymmetricKeyType === "rsa" ? "RSA" : key.asymmetricKeyType === "ec" ? "ECDSA" : "ED25519");

/**
 * resource_cert_request.go Create: x509.CreateCertificateRequest over the subject, DNS names, IP
 * addresses and URIs, signed with the key (crypto/rand: a new request each create); the state
 * keeps the PEM (pem.EncodeToMemory: 64-character lines, a final newline), the key's algorithm,
 * and as id the hashForState of the request's DER.
 */
export async function createCertRequest(inputs: PropertyMap): Promise<{ id: string; computed: PropertyMap }> {
  if (containsUnknown(inputs)) throw new ProviderCallError("tls CertRequest: cannot create with unknown inputs outside preview");
  const key = parsePrivateKeyPem(String(reveal(inputs.privateKeyPem) ?? ""));
  const { keys, signing } = await cryptoKeyPair(key);
  const dnsNames = (reveal(inputs.dnsNames) as string[] | undefined) ?? [];
  const ips = (reveal(inputs.ipAddresses) as string[] | undefined) ?? [];
  const uris = (reveal(inputs.uris) as string[] | undefined) ?? [];
  for (const ip of ips) if (isIP(ip) === 0) throw new ProviderCallError(`Invalid IP address: Failed to parse ${JSON.stringify(ip)}`);
  // crypto/x509 CreateCertificateRequest: the SAN extension only when there are names
  const extensions =
    dnsNames.length || ips.length || uris.length
      ? [
          new x509.SubjectAlternativeNameExtension([
            ...dnsNames.map((value) => ({ type: "dns" as const, value })),
            ...ips.map((value) => ({ type: "ip" as const, value })),
            ...uris.map((value) => ({ type: "url" as const, value })),
          ]),
        ]
      : [];
  const request = await x509.Pkcs10CertificateRequestGenerator.create({
    name: subjectName(reveal(inputs.subject) as Record<string, unknown> | undefined),
    keys,
    signingAlgorithm: signing,
    extensions,
  });
  const der = Buffer.from(request.rawData);
  const body = der
    .toString("base64")
    .match(/.{1,64}/g)!
    .join("\n");
  return {
    id: hashForState(der),
    computed: {
      certRequestPem: `-----BEGIN CERTIFICATE REQUEST-----\n${body}\n-----END CERTIFICATE REQUEST-----\n`,
      keyAlgorithm: algorithmOf(key),
    },
  };
}

/**
 * common.go `hashForState`: SHA-1 of `strings.TrimSpace(value)`, hex. TrimSpace works on UTF-8:
 * ASCII white space and U+0085/U+00A0 (0xC2 0x85, 0xC2 0xA0) are cut from both ends, even of DER.
 */
export function hashForState(value: Buffer): string {
  let start = 0;
  let end = value.length;
  const ascii = (b: number) => b === 0x20 || (b >= 0x09 && b <= 0x0d);
  const wide = (i: number) => value[i] === 0xc2 && (value[i + 1] === 0x85 || value[i + 1] === 0xa0);
  for (;;) {
    if (start < end && ascii(value[start])) start++;
    else if (start + 1 < end && wide(start)) start += 2;
    else break;
  }
  for (;;) {
    if (end > start && ascii(value[end - 1])) end--;
    else if (end - 2 >= start && wide(end - 2)) end -= 2;
    else break;
  }
  return createHash("sha1").update(value.subarray(start, end)).digest("hex");
}

const generate = promisify(generateKeyPair);

async function generatePrivateKey(inputs: PropertyMap): Promise<{ id: string; computed: PropertyMap }> {
  const algorithm = String(reveal(inputs.algorithm));
  const rsaBits = Number(reveal(inputs.rsaBits) ?? 2048);
  const curve = String(reveal(inputs.ecdsaCurve) ?? "P224");
  let privateKey: KeyObject;
  if (algorithm === "RSA") privateKey = (await generate("rsa", { modulusLength: rsaBits })).privateKey;
  else if (algorithm === "ECDSA") {
    const namedCurve = ({ P224: "P-224", P256: "P-256", P384: "P-384", P521: "P-521" } as Record<string, string>)[curve];
    privateKey = (await generate("ec", { namedCurve })).privateKey;
  } else privateKey = (await generate("ed25519", {})).privateKey;
  return keyOutputs(privateKey, algorithm);
}

/** Every encoding resource_private_key.go Create and common_key.go setPublicKeyAttributes store. */
export function keyOutputs(privateKey: KeyObject, algorithm: string): { id: string; computed: PropertyMap } {
  const publicKey = createPublicKey(privateKey);
  const spki = publicKey.export({ format: "der", type: "spki" });
  const pkcs8 = privateKey.export({ format: "pem", type: "pkcs8" }).toString();
  // PKCS#1 for RSA, SEC1 ("EC PRIVATE KEY") for ECDSA, PKCS#8 for Ed25519 (resource_private_key.go Create).
  const traditional =
    algorithm === "RSA"
      ? privateKey.export({ format: "pem", type: "pkcs1" }).toString()
      : algorithm === "ECDSA"
        ? privateKey.export({ format: "pem", type: "sec1" }).toString()
        : pkcs8;
  return {
    id: hashForState(spki),
    computed: {
      privateKeyPem: traditional,
      privateKeyPemPkcs8: pkcs8,
      privateKeyOpenssh: opensshPrivateKey(privateKey),
      publicKeyPem: publicKey.export({ format: "pem", type: "spki" }).toString(),
      publicKeyOpenssh: authorizedKey(publicKey),
      publicKeyFingerprintMd5: fingerprintMd5(publicKey),
      publicKeyFingerprintSha256: fingerprintSha256(publicKey),
    },
  };
}

function readyForRenewal(oldOutputs: PropertyMap, news: PropertyMap, at: Date): boolean {
  const end = reveal(oldOutputs.validityEndTime);
  if (typeof end !== "string") return false;
  const early = reveal(news.earlyRenewalHours ?? oldOutputs.earlyRenewalHours);
  const earlyHours = typeof early === "number" ? early : 0;
  return at.getTime() >= Date.parse(end) - earlyHours * 3_600_000;
}

/** Go's time.Time MarshalText: RFC 3339 with nanoseconds trimmed of trailing zeros. */
function goTimeText(d: Date): string {
  return d.toISOString().replace(/\.000Z$/, "Z");
}

async function createSelfSignedCert(inputs: PropertyMap, at: Date): Promise<{ id: string; computed: PropertyMap }> {
  if (containsUnknown(inputs)) throw new ProviderCallError("tls SelfSignedCert: cannot create with unknown inputs outside preview");
  const key = parsePrivateKeyPem(String(reveal(inputs.privateKeyPem) ?? reveal(inputs.privateKeyPemWo) ?? ""));
  const algorithm = algorithmOf(key);
  const { keys, signing } = await cryptoKeyPair(key);
  const { privateKey: privateCryptoKey, publicKey: publicCryptoKey } = keys;

  const hours = Number(reveal(inputs.validityPeriodHours));
  const notBefore = at;
  const notAfter = new Date(at.getTime() + hours * 3_600_000);
  // common_cert.go createCertificate: a 128-bit random serial; the id is its decimal form.
  const serial = BigInt(`0x${Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString("hex")}`);
  const uses = (reveal(inputs.allowedUses) as string[] | undefined) ?? [];
  let usageFlags = 0;
  const extended: string[] = [];
  for (const u of uses) {
    if (u in KEY_USAGES) usageFlags |= KEY_USAGES[u];
    if (u in EXTENDED_KEY_USAGES) extended.push(EXTENDED_KEY_USAGES[u]);
  }
  const isCa = reveal(inputs.isCaCertificate) === true;
  // resource_self_signed_cert.go Create: `x509.Certificate{BasicConstraintsValid: true}`; Go marks
  // basic constraints and key usage critical (crypto/x509 buildCertExtensions).
  const extensions: x509.Extension[] = [new x509.BasicConstraintsExtension(isCa, undefined, true)];
  if (usageFlags) extensions.push(new x509.KeyUsagesExtension(usageFlags, true));
  if (extended.length) extensions.push(new x509.ExtendedKeyUsageExtension(extended, false));
  const dnsNames = (reveal(inputs.dnsNames) as string[] | undefined) ?? [];
  const ips = (reveal(inputs.ipAddresses) as string[] | undefined) ?? [];
  const uris = (reveal(inputs.uris) as string[] | undefined) ?? [];
  if (dnsNames.length || ips.length || uris.length) {
    extensions.push(
      new x509.SubjectAlternativeNameExtension([
        ...dnsNames.map((value) => ({ type: "dns" as const, value })),
        ...ips.map((value) => ({ type: "ip" as const, value })),
        ...uris.map((value) => ({ type: "url" as const, value })),
      ]),
    );
  }
  if (isCa || reveal(inputs.setSubjectKeyId) === true) extensions.push(await x509.SubjectKeyIdentifierExtension.create(publicCryptoKey));
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial.toString(16).padStart(2, "0"),
    name: subjectName(reveal(inputs.subject) as Record<string, unknown> | undefined),
    notBefore,
    notAfter,
    signingAlgorithm: signing,
    keys: { privateKey: privateCryptoKey, publicKey: publicCryptoKey },
    extensions,
  });
  return {
    id: serial.toString(10),
    computed: {
      certPem: cert.toString("pem").replace(/\r\n/g, "\n").trimEnd() + "\n",
      keyAlgorithm: algorithm,
      validityStartTime: goTimeText(notBefore),
      validityEndTime: goTimeText(notAfter),
      readyForRenewal: false,
      ...(isAbsent(reveal(inputs.maxPathLength)) ? {} : { maxPathLength: reveal(inputs.maxPathLength) }),
    },
  };
}

/** Go's x509 signature choice per key (crypto/x509 signingParamsForKey): SHA-256 for RSA and P-256, larger hashes for larger curves. */
function webCryptoAlgorithms(key: KeyObject): {
  signing: webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams | webcrypto.Algorithm;
  verify: webcrypto.KeyUsage;
} {
  if (key.asymmetricKeyType === "rsa") return { signing: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, verify: "verify" };
  if (key.asymmetricKeyType === "ec") {
    const crv = (key.export({ format: "jwk" }) as { crv: string }).crv;
    const hash = crv === "P-384" ? "SHA-384" : crv === "P-521" ? "SHA-512" : "SHA-256";
    return { signing: { name: "ECDSA", namedCurve: crv, hash } as webcrypto.EcKeyImportParams, verify: "verify" };
  }
  return { signing: { name: "Ed25519" }, verify: "verify" };
}

/** common_cert.go createSubjectDistinguishedNames, as a distinguished name string. */
function subjectName(subject: Record<string, unknown> | undefined): string {
  if (!subject) return "";
  const parts: string[] = [];
  const esc = (v: string) => v.replace(/([,+"\\<>;=])/g, "\\$1");
  const add = (attr: string, v: unknown) => {
    if (typeof v === "string" && v !== "") parts.push(`${attr}=${esc(v)}`);
  };
  add("CN", subject.commonName);
  add("O", subject.organization);
  add("OU", subject.organizationalUnit);
  for (const street of (subject.streetAddresses as string[] | undefined) ?? []) add("STREET", street);
  add("L", subject.locality);
  add("ST", subject.province);
  add("C", subject.country);
  add("postalCode", subject.postalCode);
  add("serialNumber", subject.serialNumber);
  add("E", subject.emailAddress);
  return parts.join(", ");
}
