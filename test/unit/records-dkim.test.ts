import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { dkimPublicKeyFromPem, dkimRecordName, dkimSelectors, dkimTxt } from "../../components/records/dkim";

const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
const ed = generateKeyPairSync("ed25519");
const spkiPem = (k: { export(o: object): string | Buffer }) => k.export({ type: "spki", format: "pem" }) as string;
const pkcs8Pem = (k: { export(o: object): string | Buffer }) => k.export({ type: "pkcs8", format: "pem" }) as string;

describe("dkimSelectors", () => {
  test("one RSA and one Ed25519 selector per generation", () => {
    assert.deepEqual(dkimSelectors("2025a"), { rsa: "2025a-rsa", ed25519: "2025a-ed25519" });
  });
  test("the record lives under _domainkey (RFC 6376 3.6.2.1)", () => {
    assert.equal(dkimRecordName("2025a-rsa", "example.org"), "2025a-rsa._domainkey.example.org");
  });
});

describe("dkimPublicKeyFromPem", () => {
  test("RSA: p= is the base64 SubjectPublicKeyInfo DER (RFC 6376 3.6.1)", () => {
    const der = rsa.publicKey.export({ type: "spki", format: "der" });
    assert.equal(dkimPublicKeyFromPem(spkiPem(rsa.publicKey), "rsa"), der.toString("base64"));
  });

  test("Ed25519: p= is 44 base64 characters decoding to the raw 32-byte key (RFC 8463 3.2)", () => {
    const p = dkimPublicKeyFromPem(spkiPem(ed.publicKey), "ed25519");
    assert.equal(p.length, 44);
    const raw = Buffer.from(p, "base64");
    // The Ed25519 SPKI DER is a fixed 12-byte header followed by the 32-byte key (RFC 8410 4).
    const spki = ed.publicKey.export({ type: "spki", format: "der" });
    assert.equal(raw.length, 32);
    assert.deepEqual(raw, spki.subarray(spki.length - 32));
  });

  test("a private key PEM gives the same p= as its public key", () => {
    assert.equal(dkimPublicKeyFromPem(pkcs8Pem(ed.privateKey), "ed25519"), dkimPublicKeyFromPem(spkiPem(ed.publicKey), "ed25519"));
    assert.equal(dkimPublicKeyFromPem(pkcs8Pem(rsa.privateKey), "rsa"), dkimPublicKeyFromPem(spkiPem(rsa.publicKey), "rsa"));
  });

  test("a key of the other algorithm is refused, naming both", () => {
    assert.throws(() => dkimPublicKeyFromPem(spkiPem(ed.publicKey), "rsa"), /expected an rsa key, got ed25519/);
  });

  test("an RSA key under 1024 bits is refused (RFC 8301 3.2)", () => {
    const small = generateKeyPairSync("rsa", { modulusLength: 512 });
    assert.throws(() => dkimPublicKeyFromPem(spkiPem(small.publicKey), "rsa"), /512 bits is outside 1024\.\.4096/);
  });

  test("text that is no PEM is refused", () => {
    assert.throws(() => dkimPublicKeyFromPem("hello", "rsa"), /not a PEM public or private key/);
  });
});

describe("dkimTxt (RFC 6376 3.6.1)", () => {
  test("RSA record: v=DKIM1 first, k=rsa, p=", () => {
    assert.equal(dkimTxt({ selector: "s-rsa", algorithm: "rsa", publicKeyB64: "MIIBIj==" }), "v=DKIM1; k=rsa; p=MIIBIj==");
  });

  test("Ed25519 record: k=ed25519 and the raw key (RFC 8463 3.2)", () => {
    const p = Buffer.alloc(32, 7).toString("base64");
    assert.equal(dkimTxt({ selector: "s-ed25519", algorithm: "ed25519", publicKeyB64: p }), `v=DKIM1; k=ed25519; p=${p}`);
  });

  test("an Ed25519 key that is not 32 bytes (e.g. a whole SPKI) is refused", () => {
    const spki = ed.publicKey.export({ type: "spki", format: "der" }).toString("base64");
    assert.throws(
      () => dkimTxt({ selector: "s-ed25519", algorithm: "ed25519", publicKeyB64: spki }),
      /dkim selector "s-ed25519": an Ed25519 key is 32 bytes, got 44/,
    );
  });

  test("a key that is not base64 is refused", () => {
    assert.throws(() => dkimTxt({ selector: "s-rsa", algorithm: "rsa", publicKeyB64: "not base64!" }), /publicKeyB64 is not base64/);
  });
});
