// Certificate requests as the box makes them for its own renewals (acme-client's createCsr) and as
// the ACME provider reads them (whoever made them: the box, or @pulumi/tls's CertRequest on the
// Pulumi side): checked by OpenSSL and by acme-client.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { generateKeyPairSync, webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import * as acme from "acme-client";
import { certificateRequestPem, readCertificateRequest } from "../../components/shared/acme/certificate-request";
import { spkiSha256OfKey } from "../../components/shared/acme/certificate-info";

const names = ["mail.example.org", "mta-sts.example.org", "autoconfig.example.org"];
const ecPem = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "sec1", format: "pem" }).toString();

describe("certificateRequestPem", () => {
  for (const [label, keyPem] of [
    ["ECDSA P-256 (SEC1, as @pulumi/tls gives it)", ecPem],
    ["ECDSA P-384", generateKeyPairSync("ec", { namedCurve: "P-384" }).privateKey.export({ type: "pkcs8", format: "pem" }).toString()],
    ["RSA-2048", generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs1", format: "pem" }).toString()],
  ] as const) {
    test(`${label}: OpenSSL verifies the request and reads CN and every name as a DNS subjectAltName`, async () => {
      const csr = await certificateRequestPem(keyPem, names);
      const r = spawnSync("openssl", ["req", "-verify", "-noout", "-text"], { input: csr, encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr + r.stdout, /verify OK|Certificate request self-signature verify OK/);
      assert.match(r.stdout, /Subject: CN\s?=\s?mail\.example\.org/);
      assert.match(r.stdout, /DNS:mail\.example\.org, DNS:mta-sts\.example\.org, DNS:autoconfig\.example\.org/);
    });
  }

  test("acme-client reads the same names; readCertificateRequest gives the names and the key's SPKI hash", async () => {
    const csr = await certificateRequestPem(ecPem, names);
    const domains = acme.crypto.readCsrDomains(csr);
    assert.equal(domains.commonName, "mail.example.org");
    assert.deepEqual(domains.altNames, names);
    assert.deepEqual(await readCertificateRequest(csr), { names, spkiSha256: spkiSha256OfKey(ecPem) });
  });

  test("a first name longer than a CN may be (64) is left out of the subject, and still asked for", async () => {
    const long = `${"a".repeat(60)}.example.org`;
    const csr = await certificateRequestPem(ecPem, [long, "mail.example.org"]);
    assert.equal(acme.crypto.readCsrDomains(csr).commonName, null);
    assert.deepEqual((await readCertificateRequest(csr)).names, [long, "mail.example.org"]);
  });

  test("bad input names the input: a name that is not a certificate name, a key that is not a key, a curve no CA takes", async () => {
    await assert.rejects(certificateRequestPem(ecPem, ["Mail.example.org"]), /names\[0\]: "Mail\.example\.org" must be lowercase/);
    await assert.rejects(certificateRequestPem("not a key", names), /^Error: certificateKeyPem: not a PEM private key/);
    const p521 = generateKeyPairSync("ec", { namedCurve: "P-521" }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    await assert.rejects(
      certificateRequestPem(p521, names),
      /^Error: certificateKeyPem: a ECDSA key on secp521r1; ECDSA P-256\/P-384 and RSA are supported$/,
    );
  });
});

describe("readCertificateRequest", () => {
  test("a request whose body was altered is refused: its signature does not verify", async () => {
    const csr = await certificateRequestPem(ecPem, names);
    const der = Buffer.from(csr.replace(/-----[A-Z ]+-----|\s/g, ""), "base64");
    der[der.indexOf(Buffer.from("autoconfig"))] = "b".charCodeAt(0);
    const altered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`;
    await assert.rejects(
      readCertificateRequest(altered),
      /^Error: csrPem: not a usable certificate request: its signature does not verify$/,
    );
  });

  test("what is not a request is refused, naming the input", async () => {
    await assert.rejects(readCertificateRequest(ecPem), /^Error: csrPem: no "-----BEGIN CERTIFICATE REQUEST-----" block$/);
    await assert.rejects(
      readCertificateRequest("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", "request"),
      /^Error: request: not a usable certificate request: /,
    );
  });

  test("a request without DNS names is refused", async () => {
    const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
    const keys = (await webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: "CN=mail.example.org", keys, signingAlgorithm: algorithm });
    await assert.rejects(
      readCertificateRequest(csr.toString("pem")),
      /^Error: csrPem: not a usable certificate request: it asks for no DNS name \(subjectAltName\)$/,
    );
  });
});
