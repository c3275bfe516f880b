import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, X509Certificate } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  isSecure,
  isUsable,
  lookupTlsa,
  parseTlsaRdata,
  tlsaMatches,
  tlsaToString,
  verifyDane,
  type TlsaRecord,
} from "../../server-bootstrap/maild/outbound/dane";
import { RRTYPE, type AdQuery, type DnsAnswer } from "../../server-bootstrap/maild/outbound/dns-ad";
import { NEW_EC_KEY } from "../../infra/local-internet/test-tls";

let dir = "";
let ca: X509Certificate;
let leaf: X509Certificate;
let wildLeaf: X509Certificate;
let stranger: X509Certificate;

function openssl(...args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
}

/** A certificate signed by the test CA for `san` (subjectAltName), valid 30 days from now. */
function issue(label: string, san: string): X509Certificate {
  openssl("req", ...NEW_EC_KEY, "-keyout", `${label}.key`, "-out", `${label}.csr`, "-subj", `/CN=${label}`);
  fs.writeFileSync(path.join(dir, `${label}.ext`), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\n`);
  openssl(
    "x509",
    "-req",
    "-in",
    `${label}.csr`,
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    `${label}.pem`,
    "-days",
    "30",
    "-extfile",
    `${label}.ext`,
  );
  return new X509Certificate(fs.readFileSync(path.join(dir, `${label}.pem`)));
}

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "dane-test-"));
  const ec = NEW_EC_KEY;
  openssl(
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "30",
    "-subj",
    "/CN=DANE test TA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  );
  ca = new X509Certificate(fs.readFileSync(path.join(dir, "ca.pem")));
  leaf = issue("leaf", "DNS:mx.example.org");
  wildLeaf = issue("wild", "DNS:*.example.org");
  openssl(
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "stranger.key",
    "-out",
    "stranger.pem",
    "-days",
    "30",
    "-subj",
    "/CN=mx.example.org",
    "-addext",
    "subjectAltName=DNS:mx.example.org",
  );
  stranger = new X509Certificate(fs.readFileSync(path.join(dir, "stranger.pem")));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function spki(c: X509Certificate): Buffer {
  return c.publicKey.export({ type: "spki", format: "der" });
}

function record(usage: number, selector: number, matchingType: number, cert: X509Certificate): TlsaRecord {
  const data = selector === 0 ? cert.raw : spki(cert);
  const hashed =
    matchingType === 0
      ? data
      : createHash(matchingType === 1 ? "sha256" : "sha512")
          .update(data)
          .digest();
  return { usage, selector, matchingType, data: hashed };
}

const FAR_FUTURE = new Date("2199-01-01T00:00:00Z");

describe("TLSA records", () => {
  test("RDATA is usage, selector, matching type, then the association data; presentation form is hex", () => {
    const r = parseTlsaRdata(Buffer.from([3, 1, 1, 0xde, 0xad]));
    assert.deepEqual({ ...r, data: r.data.toString("hex") }, { usage: 3, selector: 1, matchingType: 1, data: "dead" });
    assert.equal(tlsaToString(r), "3 1 1 dead");
    assert.throws(() => parseTlsaRdata(Buffer.from([3, 1, 1])), /too short/);
  });

  test("only DANE-TA(2) and DANE-EE(3) with known selector and matching type and a digest of the right length are usable (RFC 7672 3.1)", () => {
    assert.equal(isUsable(record(3, 1, 1, leaf)), true);
    assert.equal(isUsable(record(2, 0, 2, ca)), true);
    assert.equal(isUsable(record(3, 0, 0, leaf)), true);
    assert.equal(isUsable(record(1, 1, 1, leaf)), false, "PKIX-EE");
    assert.equal(isUsable(record(0, 0, 1, ca)), false, "PKIX-TA");
    assert.equal(isUsable({ usage: 3, selector: 2, matchingType: 1, data: Buffer.alloc(32) }), false, "unknown selector");
    assert.equal(isUsable({ usage: 3, selector: 1, matchingType: 3, data: Buffer.alloc(32) }), false, "unknown matching type");
    assert.equal(isUsable({ usage: 3, selector: 1, matchingType: 1, data: Buffer.alloc(31) }), false, "short SHA-256");
  });

  test("each selector and matching type combination matches the right certificate and no other", () => {
    for (const selector of [0, 1]) {
      for (const matchingType of [0, 1, 2]) {
        const r = record(3, selector, matchingType, leaf);
        assert.equal(tlsaMatches(leaf, r), true, `${selector} ${matchingType}`);
        assert.equal(tlsaMatches(stranger, r), false, `${selector} ${matchingType} stranger`);
      }
    }
  });
});

describe("DANE authentication of a certificate chain", () => {
  test("DANE-EE matches the leaf key and checks neither name nor dates (RFC 7672 3.1.1)", () => {
    assert.deepEqual(verifyDane([leaf, ca], [record(3, 1, 1, leaf)], ["other.example.net"], FAR_FUTURE), { ok: true, usage: 3 });
    assert.deepEqual(verifyDane([stranger], [record(3, 0, 1, stranger)], ["mx.example.org"]), { ok: true, usage: 3 });
  });

  test("DANE-TA matches an issuer in the chain, and the leaf must carry the MX name (RFC 7672 3.1.2, 3.2.2)", () => {
    assert.deepEqual(verifyDane([leaf, ca], [record(2, 0, 1, ca)], ["mx.example.org"]), { ok: true, usage: 2 });
    assert.deepEqual(verifyDane([leaf, ca], [record(2, 1, 1, ca)], ["mx.example.org"]), { ok: true, usage: 2 });
    const wrongName = verifyDane([leaf, ca], [record(2, 0, 1, ca)], ["mx2.example.org"]);
    assert.equal(wrongName.ok, false);
    assert.equal(!wrongName.ok && wrongName.result, "certificate-host-mismatch");
  });

  test("DANE-TA accepts a wildcard for exactly one left-most label", () => {
    assert.equal(verifyDane([wildLeaf, ca], [record(2, 0, 1, ca)], ["mx.example.org"]).ok, true);
    const deeper = verifyDane([wildLeaf, ca], [record(2, 0, 1, ca)], ["a.mx.example.org"]);
    assert.equal(!deeper.ok && deeper.result, "certificate-host-mismatch");
  });

  test("DANE-TA checks the leaf's validity period", () => {
    const v = verifyDane([leaf, ca], [record(2, 0, 1, ca)], ["mx.example.org"], FAR_FUTURE);
    assert.equal(!v.ok && v.result, "certificate-expired");
  });

  test("DANE-TA fails when the leaf was not signed by the matching anchor", () => {
    const v = verifyDane([stranger, ca], [record(2, 0, 1, ca)], ["mx.example.org"]);
    assert.equal(!v.ok && v.result, "validation-failure");
  });

  test("no matching record is tlsa-invalid; unusable records never authenticate", () => {
    const none = verifyDane([leaf, ca], [record(3, 1, 1, stranger)], ["mx.example.org"]);
    assert.equal(!none.ok && none.result, "tlsa-invalid");
    const pkix = verifyDane([leaf, ca], [record(1, 1, 1, leaf), record(0, 0, 1, ca)], ["mx.example.org"]);
    assert.equal(!pkix.ok && pkix.result, "tlsa-invalid");
  });

  test("an empty chain fails", () => {
    const v = verifyDane([], [record(3, 1, 1, leaf)], ["mx.example.org"]);
    assert.equal(!v.ok && v.result, "validation-failure");
  });
});

describe("TLSA lookup", () => {
  function answer(partial: Partial<DnsAnswer>): DnsAnswer {
    return { rcode: 0, authenticated: true, truncated: false, answers: [], ...partial };
  }
  const tlsaRr = (r: TlsaRecord) => ({
    name: "_25._tcp.mx.example.org",
    type: RRTYPE.TLSA,
    ttl: 300,
    data: Buffer.from([r.usage, r.selector, r.matchingType, ...r.data]),
  });

  test("the query is for _<port>._tcp.<host> TLSA", async () => {
    const asked: string[] = [];
    const q: AdQuery = async (n, t) => (asked.push(`${n}/${t}`), answer({}));
    await lookupTlsa(q, "mx.example.org", 25);
    assert.deepEqual(asked, ["_25._tcp.mx.example.org/52"]);
  });

  test("validated records (AD=1) are secure", async () => {
    const r = record(3, 1, 1, leaf);
    const got = await lookupTlsa(async () => answer({ answers: [tlsaRr(r)] }), "mx.example.org", 25);
    assert.equal(got.kind, "secure");
    assert.deepEqual(got.kind === "secure" && got.records.map(tlsaToString), [tlsaToString(r)]);
  });

  test("records without AD are ignored as insecure (RFC 7672 2.1.1)", async () => {
    const got = await lookupTlsa(
      async () => answer({ authenticated: false, answers: [tlsaRr(record(3, 1, 1, leaf))] }),
      "mx.example.org",
      25,
    );
    assert.deepEqual(got, { kind: "none" });
  });

  test("NXDOMAIN and NODATA mean no TLSA records", async () => {
    assert.deepEqual(await lookupTlsa(async () => answer({ rcode: 3 }), "mx.example.org", 25), { kind: "none" });
    assert.deepEqual(await lookupTlsa(async () => answer({}), "mx.example.org", 25), { kind: "none" });
  });

  test("SERVFAIL and transport errors are failures, not absence (RFC 7672 2.1.1)", async () => {
    assert.equal((await lookupTlsa(async () => answer({ rcode: 2, authenticated: false }), "mx.example.org", 25)).kind, "failed");
    assert.equal(
      (
        await lookupTlsa(
          async () => {
            throw new Error("timeout");
          },
          "mx.example.org",
          25,
        )
      ).kind,
      "failed",
    );
  });

  test("an RRset is secure only with AD on an answer that is NOERROR or NXDOMAIN", async () => {
    assert.equal(await isSecure(async () => answer({}), "example.org", RRTYPE.MX), true);
    assert.equal(await isSecure(async () => answer({ rcode: 3 }), "example.org", RRTYPE.MX), true);
    assert.equal(await isSecure(async () => answer({ authenticated: false }), "example.org", RRTYPE.MX), false);
    assert.equal(await isSecure(async () => answer({ rcode: 2 }), "example.org", RRTYPE.MX), false);
    assert.equal(
      await isSecure(
        async () => {
          throw new Error("unreachable");
        },
        "example.org",
        RRTYPE.MX,
      ),
      false,
    );
  });
});
