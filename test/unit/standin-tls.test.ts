import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash, createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import { utils as ssh2Utils } from "ssh2";
import { Secret, Unknown, type CallContext, type PropertyMap } from "../../infra/offline/model";
import { CERT_REQUEST, hashForState, PRIVATE_KEY, SELF_SIGNED_CERT, tlsStandIn } from "../../infra/offline/providers/tls";
import { readCertificateRequest } from "../../components/shared/acme/certificate-request";
import { reveal } from "../../infra/offline/providers/property";

const ctx = (preview = false, name = "key"): CallContext => ({
  urn: `urn:pulumi:dev::mailstack::tls:index/privateKey:PrivateKey::${name}`,
  preview,
  log: () => {},
});

async function createKey(inputs: PropertyMap) {
  const tls = tlsStandIn();
  const checked = await tls.check(ctx(), PRIVATE_KEY, undefined, inputs);
  assert.deepEqual(checked.failures, []);
  return tls.create(ctx(), PRIVATE_KEY, checked.inputs);
}

const str = (v: unknown) => reveal(v) as string;

describe("tls stand-in: PrivateKey", () => {
  test("an ED25519 key's privateKeyOpenssh is an OpenSSH private key ssh2 parses, for the public key in publicKeyOpenssh", async () => {
    const { outputs } = await createKey({ algorithm: "ED25519" });
    assert.match(str(outputs.privateKeyOpenssh), /^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    const parsed = ssh2Utils.parseKey(str(outputs.privateKeyOpenssh));
    assert.ok(!(parsed instanceof Error), `ssh2 could not parse the key: ${parsed}`);
    const key = Array.isArray(parsed) ? parsed[0] : parsed;
    assert.equal(key.type, "ssh-ed25519");
    assert.equal(`ssh-ed25519 ${key.getPublicSSH().toString("base64")}\n`, outputs.publicKeyOpenssh);
    const data = Buffer.from("signed by the deployer");
    assert.equal(key.verify(data, key.sign(data)), true);
  });

  test("RSA and ECDSA P-256 private keys in OpenSSH form parse with ssh2 too", async () => {
    for (const inputs of [
      { algorithm: "RSA", rsaBits: 2048 },
      { algorithm: "ECDSA", ecdsaCurve: "P256" },
    ]) {
      const { outputs } = await createKey(inputs);
      const parsed = ssh2Utils.parseKey(str(outputs.privateKeyOpenssh));
      assert.ok(!(parsed instanceof Error), `${inputs.algorithm}: ${parsed}`);
      const key = Array.isArray(parsed) ? parsed[0] : parsed;
      assert.equal(`${key.type} ${key.getPublicSSH().toString("base64")}\n`, outputs.publicKeyOpenssh);
    }
  });

  test("privateKeyPem is PKCS#1 for RSA, SEC1 for ECDSA and PKCS#8 for ED25519, as the provider writes it", async () => {
    assert.match(str((await createKey({ algorithm: "RSA" })).outputs.privateKeyPem), /^-----BEGIN RSA PRIVATE KEY-----\n/);
    assert.match(
      str((await createKey({ algorithm: "ECDSA", ecdsaCurve: "P256" })).outputs.privateKeyPem),
      /^-----BEGIN EC PRIVATE KEY-----\n/,
    );
    assert.match(str((await createKey({ algorithm: "ED25519" })).outputs.privateKeyPem), /^-----BEGIN PRIVATE KEY-----\n/);
    assert.match(str((await createKey({ algorithm: "RSA" })).outputs.privateKeyPemPkcs8), /^-----BEGIN PRIVATE KEY-----\n/);
  });

  test("the private encodings are secrets; the public ones are not", async () => {
    const { outputs } = await createKey({ algorithm: "ED25519" });
    for (const k of ["privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh"]) assert.ok(outputs[k] instanceof Secret, k);
    for (const k of ["publicKeyPem", "publicKeyOpenssh", "publicKeyFingerprintSha256"]) assert.equal(typeof outputs[k], "string", k);
  });

  test("rsaBits defaults to 2048 and ecdsaCurve to P224, and both defaults are in the state", async () => {
    const { outputs } = await createKey({ algorithm: "RSA" });
    assert.equal(outputs.rsaBits, 2048);
    assert.equal(outputs.ecdsaCurve, "P224");
    const jwk = createPrivateKey(str(outputs.privateKeyPem)).export({ format: "jwk" }) as { n: string };
    assert.equal(Buffer.from(jwk.n, "base64url").length * 8, 2048);
  });

  test("an ECDSA key on the default curve P224 has no OpenSSH forms (x/crypto/ssh has no P-224)", async () => {
    const { outputs } = await createKey({ algorithm: "ECDSA" });
    assert.equal(createPrivateKey(str(outputs.privateKeyPem)).asymmetricKeyDetails?.namedCurve, "secp224r1");
    assert.equal(outputs.publicKeyOpenssh, "");
    assert.equal(str(outputs.privateKeyOpenssh), "");
    assert.equal(outputs.publicKeyFingerprintSha256, "");
  });

  test("fingerprints are SSH's: SHA256 of the public blob, unpadded base64; MD5 as colon-separated hex", async () => {
    const { outputs } = await createKey({ algorithm: "ED25519" });
    const blob = Buffer.from(str(outputs.publicKeyOpenssh).split(" ")[1], "base64");
    assert.equal(outputs.publicKeyFingerprintSha256, `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`);
    assert.equal(outputs.publicKeyFingerprintMd5, createHash("md5").update(blob).digest("hex").match(/../g)!.join(":"));
  });

  test("the id is the SHA-1 of the public key's DER SubjectPublicKeyInfo, hex", async () => {
    // A DER ending in a white-space byte is trimmed first (next test); pick a key whose DER does not.
    for (;;) {
      const { id, outputs } = await createKey({ algorithm: "ECDSA", ecdsaCurve: "P256" });
      const der = createPublicKey(str(outputs.publicKeyPem)).export({ format: "der", type: "spki" });
      if (/[\t\n\v\f\r ]$/.test(der.toString("latin1"))) continue;
      assert.equal(id, createHash("sha1").update(der).digest("hex"));
      break;
    }
  });

  test("the id hash trims white space from both ends of the DER, as Go's strings.TrimSpace does", () => {
    const der = Buffer.from([0x30, 0x03, 0x01, 0x02, 0x20, 0x0a, 0xc2, 0xa0]);
    assert.equal(
      hashForState(der),
      createHash("sha1")
        .update(Buffer.from([0x30, 0x03, 0x01, 0x02]))
        .digest("hex"),
    );
  });

  test("preview create: unknown id and unknown key material, the inputs and defaults known", async () => {
    const tls = tlsStandIn();
    const { id, outputs } = await tls.create(ctx(true), PRIVATE_KEY, { algorithm: "ED25519", __defaults: [] });
    assert.equal(id, Unknown);
    assert.equal(outputs.algorithm, "ED25519");
    assert.equal(outputs.rsaBits, 2048);
    for (const k of ["privateKeyPem", "privateKeyOpenssh", "publicKeyOpenssh", "publicKeyPem"])
      assert.equal(reveal(outputs[k]), Unknown, k);
  });

  test("every input forces a replacement; an omitted rsaBits matches the stored default", async () => {
    const tls = tlsStandIn();
    const { outputs } = await createKey({ algorithm: "RSA" });
    const same = await tls.diff(ctx(), PRIVATE_KEY, "x", { algorithm: "RSA" }, outputs, { algorithm: "RSA", __defaults: [] }, []);
    assert.equal(same.changes, "none");
    const bits = await tls.diff(ctx(), PRIVATE_KEY, "x", { algorithm: "RSA" }, outputs, { algorithm: "RSA", rsaBits: 4096 }, []);
    assert.deepEqual([bits.changes, bits.replaceKeys, bits.deleteBeforeReplace], ["some", ["rsaBits"], false]);
    const unknown = await tls.diff(ctx(true), PRIVATE_KEY, "x", { algorithm: "RSA" }, outputs, { algorithm: Unknown }, []);
    assert.deepEqual(unknown.replaceKeys, ["algorithm"]);
  });

  test("check refuses an algorithm outside RSA|ECDSA|ED25519 with the validator's message", async () => {
    const { failures } = await tlsStandIn().check(ctx(), PRIVATE_KEY, undefined, { algorithm: "rsa" });
    assert.deepEqual(failures, [
      { property: "algorithm", reason: 'Attribute algorithm value must be one of: ["RSA" "ECDSA" "ED25519"], got: "rsa"' },
    ]);
  });

  test("import is refused: the key exists only in the state", async () => {
    await assert.rejects(tlsStandIn().read(ctx(), PRIVATE_KEY, "abc"), /does not support import/);
  });
});

describe("tls stand-in: SelfSignedCert", () => {
  const certInputs = async () => {
    const key = await createKey({ algorithm: "ECDSA", ecdsaCurve: "P256" });
    return {
      privateKeyPem: key.outputs.privateKeyPem,
      subject: { commonName: "mail.example.org" },
      dnsNames: ["mail.example.org", "mta-sts.example.org"],
      validityPeriodHours: 24 * 90,
      earlyRenewalHours: 24 * 30,
      allowedUses: ["digital_signature", "key_encipherment", "server_auth"],
    } as PropertyMap;
  };

  test("the certificate is signed by the given key and carries the names, validity and subject", async () => {
    const now = new Date("2026-11-01T00:00:00Z");
    const tls = tlsStandIn({ now: () => now });
    const inputs = await certInputs();
    const { id, outputs } = await tls.create(ctx(), SELF_SIGNED_CERT, inputs);
    const cert = new X509Certificate(str(outputs.certPem));
    assert.ok(cert.verify(createPublicKey(str(inputs.privateKeyPem))));
    assert.ok(cert.checkPrivateKey(createPrivateKey(str(inputs.privateKeyPem))));
    assert.equal(cert.subjectAltName, "DNS:mail.example.org, DNS:mta-sts.example.org");
    assert.equal(cert.subject, "CN=mail.example.org");
    assert.equal(BigInt(`0x${cert.serialNumber}`).toString(10), id);
    assert.equal(outputs.validityStartTime, "2026-11-01T00:00:00Z");
    assert.equal(outputs.validityEndTime, "2027-01-30T00:00:00Z");
    assert.equal(outputs.keyAlgorithm, "ECDSA");
    assert.ok(outputs.privateKeyPem instanceof Secret);
  });

  test("inside the early-renewal window the next diff replaces the certificate; before it, nothing changes", async () => {
    const issued = new Date("2026-11-01T00:00:00Z");
    const inputs = await certInputs();
    const { outputs } = await tlsStandIn({ now: () => issued }).create(ctx(), SELF_SIGNED_CERT, inputs);
    const day59 = tlsStandIn({ now: () => new Date("2026-12-30T00:00:00Z") });
    assert.equal((await day59.diff(ctx(), SELF_SIGNED_CERT, "1", inputs, outputs, inputs, [])).changes, "none");
    const day60 = tlsStandIn({ now: () => new Date("2026-12-31T00:00:00Z") });
    const due = await day60.diff(ctx(), SELF_SIGNED_CERT, "1", inputs, outputs, inputs, []);
    assert.deepEqual([due.changes, due.replaceKeys], ["some", ["readyForRenewal"]]);
  });

  test("a new key replaces the certificate; a new earlyRenewalHours updates it in place", async () => {
    const tls = tlsStandIn();
    const inputs = await certInputs();
    const { outputs } = await tls.create(ctx(), SELF_SIGNED_CERT, inputs);
    const other = await certInputs();
    const rekey = await tls.diff(ctx(), SELF_SIGNED_CERT, "1", inputs, outputs, { ...inputs, privateKeyPem: other.privateKeyPem }, []);
    assert.deepEqual(rekey.replaceKeys, ["privateKeyPem"]);
    const renewal = await tls.diff(ctx(), SELF_SIGNED_CERT, "1", inputs, outputs, { ...inputs, earlyRenewalHours: 24 * 10 }, []);
    assert.deepEqual([renewal.changedKeys, renewal.replaceKeys], [["earlyRenewalHours"], []]);
  });

  test("a key that is not PEM fails the create with the provider's message", async () => {
    const inputs = { ...(await certInputs()), privateKeyPem: new Secret("not a key") };
    await assert.rejects(tlsStandIn().create(ctx(), SELF_SIGNED_CERT, inputs), /^ProviderCallError: Failed to parse private key PEM/);
  });
});

describe("tls stand-in: CertRequest", () => {
  const requestInputs = async (): Promise<PropertyMap> => {
    const key = await createKey({ algorithm: "ECDSA", ecdsaCurve: "P256" });
    return {
      privateKeyPem: key.outputs.privateKeyPem,
      subject: { commonName: "mail.example.org" },
      dnsNames: ["mail.example.org", "mta-sts.example.org"],
    };
  };

  test("the request is signed by the given key and asks for the subject and the DNS names; its id is hashForState of its DER", async () => {
    const inputs = await requestInputs();
    const tls = tlsStandIn();
    const checked = await tls.check(ctx(false, "request"), CERT_REQUEST, undefined, inputs);
    assert.deepEqual(checked.failures, []);
    const { id, outputs } = await tls.create(ctx(false, "request"), CERT_REQUEST, checked.inputs);
    const pem = str(outputs.certRequestPem);
    assert.match(
      pem,
      /^-----BEGIN CERTIFICATE REQUEST-----\n(?:[A-Za-z0-9+/=]{64}\n)*[A-Za-z0-9+/=]{1,64}\n-----END CERTIFICATE REQUEST-----\n$/,
    );
    const r = spawnSync("openssl", ["req", "-verify", "-noout", "-text"], { input: pem, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Subject: CN\s?=\s?mail\.example\.org/);
    assert.match(r.stdout, /DNS:mail\.example\.org, DNS:mta-sts\.example\.org/);
    const request = await readCertificateRequest(pem);
    assert.equal(
      request.spkiSha256,
      createHash("sha256")
        .update(createPublicKey(str(inputs.privateKeyPem)).export({ type: "spki", format: "der" }))
        .digest("hex"),
    );
    assert.equal(id, hashForState(Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ""), "base64")));
    assert.equal(outputs.keyAlgorithm, "ECDSA");
    assert.ok(outputs.privateKeyPem instanceof Secret);
    assert.equal(outputs.certRequestPem instanceof Secret, false, "the request itself is public");
  });

  test("each create signs anew, so the request lives in the state: an unchanged program diffs to nothing", async () => {
    const inputs = await requestInputs();
    const tls = tlsStandIn();
    const first = await tls.create(ctx(), CERT_REQUEST, inputs);
    const second = await tls.create(ctx(), CERT_REQUEST, inputs);
    assert.notEqual(str(first.outputs.certRequestPem), str(second.outputs.certRequestPem));
    const checked = await tls.check(ctx(), CERT_REQUEST, inputs, inputs);
    const diff = await tls.diff(ctx(), CERT_REQUEST, first.id as string, inputs, first.outputs, checked.inputs, []);
    assert.deepEqual([diff.changes, diff.changedKeys], ["none", []]);
  });

  test("every input replaces it: another key, other names, another subject", async () => {
    const inputs = await requestInputs();
    const tls = tlsStandIn();
    const { id, outputs } = await tls.create(ctx(), CERT_REQUEST, inputs);
    const other = await requestInputs();
    for (const [change, key] of [
      [{ privateKeyPem: other.privateKeyPem }, "privateKeyPem"],
      [{ dnsNames: ["mail.example.org"] }, "dnsNames"],
      [{ subject: { commonName: "mx.example.org" } }, "subject"],
    ] as const) {
      const diff = await tls.diff(ctx(), CERT_REQUEST, id as string, inputs, outputs, { ...inputs, ...change }, []);
      assert.deepEqual([diff.changes, diff.replaceKeys, diff.deleteBeforeReplace], ["some", [key], false], key);
    }
  });

  test("in a preview the request and the key algorithm are unknown", async () => {
    const inputs = await requestInputs();
    const { id, outputs } = await tlsStandIn().create(ctx(true), CERT_REQUEST, inputs);
    assert.deepEqual([id, outputs.certRequestPem, outputs.keyAlgorithm], [Unknown, Unknown, Unknown]);
  });

  test("no key is a check failure; a key that is not PEM fails the create with the provider's message", async () => {
    const tls = tlsStandIn();
    const checked = await tls.check(ctx(), CERT_REQUEST, undefined, { dnsNames: ["mail.example.org"] });
    assert.deepEqual(checked.failures, [{ property: "privateKeyPem", reason: "Missing required argument: privateKeyPem" }]);
    await assert.rejects(
      tls.create(ctx(), CERT_REQUEST, { privateKeyPem: new Secret("not a key"), dnsNames: ["mail.example.org"] }),
      /^ProviderCallError: Failed to parse private key PEM: failed to decode PEM block: decoded bytes 0, undecoded 9$/,
    );
  });
});
