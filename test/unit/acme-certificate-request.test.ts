// The certificate request the Pulumi side sends instead of the certificate key: deterministic
// ECDSA checked against RFC 6979's own vectors, the request checked by OpenSSL and by acme-client.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash, createPrivateKey, generateKeyPairSync } from "node:crypto";
import * as acme from "acme-client";
import {
  certificateRequestPem,
  deterministicEcdsa,
  readCertificateRequest,
  rfc6979Nonces,
} from "../../components/shared/acme/certificate-request";
import { spkiSha256OfKey } from "../../components/shared/acme/certificate-info";
import { children, pem, pemBody, readTlv } from "../../components/shared/acme/der";

const jwkKey = (crv: string, d: string, x: string, y: string) =>
  createPrivateKey({
    key: {
      kty: "EC",
      crv,
      d: Buffer.from(d, "hex").toString("base64url"),
      x: Buffer.from(x, "hex").toString("base64url"),
      y: Buffer.from(y, "hex").toString("base64url"),
    },
    format: "jwk",
  });

// RFC 6979 A.2.5 (P-256) and A.2.6 (P-384), messages "sample" and "test".
const VECTORS = [
  {
    curve: "prime256v1",
    hash: "sha256",
    key: jwkKey(
      "P-256",
      "C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721",
      "60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6",
      "7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299",
    ),
    x: "C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721",
    cases: [
      {
        message: "sample",
        k: "A6E3C57DD01ABE90086538398355DD4C3B17AA873382B0F24D6129493D8AAD60",
        r: "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716",
        s: "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8",
      },
      {
        message: "test",
        k: "D16B6AE827F17175E040871A1C7EC3500192C4C92677336EC2537ACAEE0008E0",
        r: "F1ABB023518351CD71D881567B1EA663ED3EFCF6C5132B354F28D3B0B7D38367",
        s: "019F4113742A2B14BD25926B49C649155F267E60D3814B4C0CC84250E46F0083",
      },
    ],
  },
  {
    curve: "secp384r1",
    hash: "sha384",
    key: jwkKey(
      "P-384",
      "6B9D3DAD2E1B8C1C05B19875B6659F4DE23C3B667BF297BA9AA47740787137D896D5724E4C70A825F872C9EA60D2EDF5",
      "EC3A4E415B4E19A4568618029F427FA5DA9A8BC4AE92E02E06AAE5286B300C64DEF8F0EA9055866064A254515480BC13",
      "8015D9B72D7D57244EA8EF9AC0C621896708A59367F9DFB9F54CA84B3F1C9DB1288B231C3AE0D4FE7344FD2533264720",
    ),
    x: "6B9D3DAD2E1B8C1C05B19875B6659F4DE23C3B667BF297BA9AA47740787137D896D5724E4C70A825F872C9EA60D2EDF5",
    cases: [
      {
        message: "sample",
        k: "94ED910D1A099DAD3254E9242AE85ABDE4BA15168EAF0CA87A555FD56D10FBCA2907E3E83BA95368623B8C4686915CF9",
        r: "94EDBB92A5ECB8AAD4736E56C691916B3F88140666CE9FA73D64C4EA95AD133C81A648152E44ACF96E36DD1E80FABE46",
        s: "99EF4AEB15F178CEA1FE40DB2603138F130E740A19624526203B6351D0A3A94FA329C145786E679E7B82C71A38628AC8",
      },
      {
        message: "test",
        k: "015EE46A5BF88773ED9123A5AB0807962D193719503C527B031B4C2D225092ADA71F4A459BC0DA98ADB95837DB8312EA",
        r: "8203B63D3C853E8D77227FB377BCF7B7B772E97892A80F36AB775D509D7A5FEB0542A7F0812998DA8F1DD3CA3CF023DB",
        s: "DDD0760448D42D8A43AF45AF836FCE4DE8BE06B485E9B61B827C2F13173923E06A739F040649A667BF3B828246BAA5A5",
      },
    ],
  },
];

describe("deterministic ECDSA (RFC 6979 3.2)", () => {
  for (const v of VECTORS) {
    for (const c of v.cases) {
      test(`${v.curve} "${c.message}": the nonce and the signature are the RFC's`, () => {
        const h1 = createHash(v.hash).update(c.message).digest();
        const k = rfc6979Nonces(v.curve, BigInt(`0x${v.x}`), h1).next().value as bigint;
        assert.equal(k.toString(16).padStart(c.k.length, "0").toUpperCase(), c.k);
        assert.equal(deterministicEcdsa(v.key, Buffer.from(c.message)).toString("hex").toUpperCase(), c.r + c.s);
      });
    }
  }
});

describe("certificateRequestPem", () => {
  const ecPem = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "sec1", format: "pem" }).toString();
  const names = ["mail.example.org", "mta-sts.example.org", "autoconfig.example.org"];

  test("the same key and names give the same request, byte for byte", () => {
    assert.equal(certificateRequestPem(ecPem, names), certificateRequestPem(ecPem, names));
  });

  test("different names are signed with a different nonce (r differs), so no nonce is ever reused", () => {
    const a = signatureR(certificateRequestPem(ecPem, names));
    const b = signatureR(certificateRequestPem(ecPem, [...names, "autodiscover.example.org"]));
    assert.notEqual(a, b);
  });

  for (const [label, keyPem] of [
    ["ECDSA P-256 (SEC1, as @pulumi/tls gives it)", ecPem],
    ["ECDSA P-384", generateKeyPairSync("ec", { namedCurve: "P-384" }).privateKey.export({ type: "pkcs8", format: "pem" }).toString()],
    ["RSA-2048", generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs1", format: "pem" }).toString()],
  ] as const) {
    test(`${label}: OpenSSL verifies the request and reads CN and every name as a DNS subjectAltName`, () => {
      const csr = certificateRequestPem(keyPem, names);
      const r = spawnSync("openssl", ["req", "-verify", "-noout", "-text"], { input: csr, encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr + r.stdout, /verify OK|Certificate request self-signature verify OK/);
      assert.match(r.stdout, /Subject: CN\s?=\s?mail\.example\.org/);
      assert.match(r.stdout, /DNS:mail\.example\.org, DNS:mta-sts\.example\.org, DNS:autoconfig\.example\.org/);
    });
  }

  test("acme-client reads the same names; readCertificateRequest gives the names and the key's SPKI hash", () => {
    const csr = certificateRequestPem(ecPem, names);
    const domains = acme.crypto.readCsrDomains(csr);
    assert.equal(domains.commonName, "mail.example.org");
    assert.deepEqual(domains.altNames, names);
    assert.deepEqual(readCertificateRequest(csr), { names, spkiSha256: spkiSha256OfKey(ecPem) });
  });

  test("a request whose body was altered is refused: its signature does not verify", () => {
    const der = pemBody(certificateRequestPem(ecPem, names), "CERTIFICATE REQUEST")!;
    der[der.indexOf(Buffer.from("autoconfig"))] = "b".charCodeAt(0);
    assert.throws(
      () => readCertificateRequest(pem("CERTIFICATE REQUEST", der)),
      /^Error: csrPem: not a usable certificate request: its signature does not verify$/,
    );
    assert.throws(() => readCertificateRequest(ecPem), /^Error: csrPem: no "-----BEGIN CERTIFICATE REQUEST-----" block$/);
  });

  test("bad input names the input: a name that is not a certificate name, a key that is not a key", () => {
    assert.throws(() => certificateRequestPem(ecPem, ["Mail.example.org"]), /names\[0\]: "Mail\.example\.org" must be lowercase/);
    assert.throws(() => certificateRequestPem("not a key", names), /^Error: certificateKeyPem: not a PEM private key/);
    const p521 = generateKeyPairSync("ec", { namedCurve: "P-521" }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    assert.throws(() => certificateRequestPem(p521, names), /certificateKeyPem: an ECDSA key on secp521r1; P-256 and P-384 are supported/);
  });
});

/** r of a request's ECDSA signature (RFC 5480 2.2 / RFC 3279 2.2.3: SEQUENCE { r, s }). */
function signatureR(csr: string): string {
  const der = pemBody(csr, "CERTIFICATE REQUEST")!;
  const signature = children(der, readTlv(der, 0))[2];
  const value = der.subarray(signature.contentStart + 1, signature.end);
  return value.subarray(children(value, readTlv(value, 0))[0].contentStart, children(value, readTlv(value, 0))[0].end).toString("hex");
}
