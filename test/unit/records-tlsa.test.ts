import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { createHash, generateKeyPairSync } from "node:crypto";
import { spkiSha256FromPem, tlsaContent, tlsaData, tlsaRecordName } from "../../components/records/tlsa";

const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
const spkiDer = ec.publicKey.export({ type: "spki", format: "der" });
const expectedHash = createHash("sha256").update(spkiDer).digest("hex");

describe("spkiSha256FromPem (TLSA selector 1, matching type 1)", () => {
  test("from a public key PEM: SHA-256 of the SPKI DER in lowercase hex", () => {
    assert.equal(spkiSha256FromPem(ec.publicKey.export({ type: "spki", format: "pem" }) as string), expectedHash);
  });
  test("from the private key PEM: the same hash", () => {
    assert.equal(spkiSha256FromPem(ec.privateKey.export({ type: "pkcs8", format: "pem" }) as string), expectedHash);
  });
  test("from an SEC1 private key PEM: the same hash", () => {
    assert.equal(spkiSha256FromPem(ec.privateKey.export({ type: "sec1", format: "pem" }) as string), expectedHash);
  });
});

describe("TLSA record (RFC 7672, RFC 7671)", () => {
  test("lives at _25._tcp.<mail host> (RFC 6698 3)", () => {
    assert.equal(tlsaRecordName("mail.example.org"), "_25._tcp.mail.example.org");
  });
  test("DANE-EE(3) SPKI(1) SHA-256(1) data with upper-case hex, as Cloudflare returns it", () => {
    assert.deepEqual(tlsaData(expectedHash), { usage: 3, selector: 1, matchingType: 1, certificate: expectedHash.toUpperCase() });
  });
  test("content is `3 1 1 <HEX>`, four fields, upper-case hex (Cloudflare's returned content)", () => {
    assert.equal(tlsaContent(tlsaData(expectedHash)), `3 1 1 ${expectedHash.toUpperCase()}`);
  });
  test("a hash that is not 64 hex digits is refused", () => {
    assert.throws(() => tlsaData("abc"), /tlsSpkiSha256: "abc" is not 64 hex digits/);
  });
});
