import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, X509Certificate } from "node:crypto";
import {
  certificateFindings,
  checkTlsa,
  checkTlsProbe,
  tlsaMatches,
  tlsaUsable,
  type TlsaAssociation,
  type TlsProbeResult,
} from "../../infra/cli/check-tls";
import { CA_PEM, LEAF_PEM } from "../fixtures/certificates";

const leaf = new X509Certificate(LEAF_PEM).raw;
const ca = new X509Certificate(CA_PEM).raw;
const chain = [leaf, ca];
const trusted = { chain, authorized: true };
const at = (iso: string) => new Date(iso);
const spki = (der: Buffer) => new X509Certificate(der).publicKey.export({ type: "spki", format: "der" });
const sha256 = (b: Buffer) => createHash("sha256").update(b).digest();
const sha512 = (b: Buffer) => createHash("sha512").update(b).digest();

describe("certificateFindings: trust, name and lifetime at a given time", () => {
  test("a trusted certificate for the name with 30 days left passes, naming expiry and issuer", () => {
    assert.deepEqual(certificateFindings(trusted, "mail.example.org", at("2026-03-02T00:00:00Z")), [
      { status: "pass", detail: "certificate valid until 2026-04-01 (30 days), issuer mailstack unit test CA" },
    ]);
  });

  test("13 days left is a warning: renewal should have happened", () => {
    assert.deepEqual(certificateFindings(trusted, "mail.example.org", at("2026-03-19T00:00:00Z")), [
      { status: "warn", detail: "certificate expires in 13 days (2026-04-01): renewal is overdue" },
    ]);
  });

  test("14 days left still passes", () => {
    assert.equal(certificateFindings(trusted, "mail.example.org", at("2026-03-18T00:00:00Z"))[0].status, "pass");
  });

  test("after notAfter the certificate fails as expired, whatever node's chain verdict", () => {
    const expired = { chain, authorized: false, authorizationError: "CERT_HAS_EXPIRED" };
    assert.deepEqual(certificateFindings(expired, "mail.example.org", at("2026-05-01T00:00:00Z")), [
      { status: "fail", detail: "certificate expired on 2026-04-01" },
    ]);
  });

  test("before notBefore the certificate fails as not yet valid", () => {
    assert.deepEqual(certificateFindings(trusted, "mail.example.org", at("2025-12-01T00:00:00Z")), [
      { status: "fail", detail: "certificate is not valid before 2026-01-01" },
    ]);
  });

  test("another name fails, listing the names the certificate has", () => {
    const findings = certificateFindings(trusted, "imap.example.org", at("2026-02-01T00:00:00Z"));
    assert.deepEqual(findings, [
      { status: "fail", detail: "certificate is for DNS:mail.example.org, DNS:mta-sts.example.org, not imap.example.org" },
    ]);
  });

  test("an untrusted chain fails with node's reason and the hint to pass --ca", () => {
    const untrusted = { chain, authorized: false, authorizationError: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" };
    const [finding] = certificateFindings(untrusted, "mail.example.org", at("2026-02-01T00:00:00Z"));
    assert.equal(finding.status, "fail");
    assert.match(
      finding.detail,
      /^certificate is not trusted: UNABLE_TO_VERIFY_LEAF_SIGNATURE \(issuer mailstack unit test CA; a private CA needs --ca FILE\)$/,
    );
  });

  test("no certificate at all fails", () => {
    assert.deepEqual(certificateFindings({ chain: [], authorized: false }, "mail.example.org", at("2026-02-01T00:00:00Z")), [
      { status: "fail", detail: "the server sent no certificate" },
    ]);
  });
});

describe("checkTlsProbe: one row per port and address", () => {
  const probe = (extra: Partial<TlsProbeResult>): TlsProbeResult => ({
    port: 25,
    address: "198.51.100.25",
    mode: "smtp-starttls",
    ...extra,
  });
  const now = at("2026-02-01T00:00:00Z");

  test("TLS 1.3 with a good certificate passes and records the protocol", () => {
    const r = checkTlsProbe("tls.25.ipv4", probe({ protocol: "TLSv1.3", ...trusted }), "mail.example.org", now);
    assert.deepEqual(r, {
      check: "tls.25.ipv4",
      status: "pass",
      detail: "TLSv1.3; certificate valid until 2026-04-01 (59 days), issuer mailstack unit test CA",
      target: "198.51.100.25:25",
    });
  });

  test("TLS 1.1 fails (RFC 8996) even with a good certificate", () => {
    const r = checkTlsProbe("tls.25.ipv4", probe({ protocol: "TLSv1.1", ...trusted }), "mail.example.org", now);
    assert.equal(r.status, "fail");
    assert.equal(r.detail, "negotiated TLSv1.1: use TLS 1.2 or later (RFC 8996)");
  });

  test("a probe that did not connect fails with its reason; IPv6 targets are bracketed", () => {
    const r = checkTlsProbe(
      "tls.993.ipv6",
      { port: 993, address: "2001:db8::1", mode: "implicit", error: "connect: connection refused (nothing listens on the port)" },
      "mail.example.org",
      now,
    );
    assert.deepEqual(r, {
      check: "tls.993.ipv6",
      status: "fail",
      detail: "connect: connection refused (nothing listens on the port)",
      target: "[2001:db8::1]:993",
    });
  });

  test("an expired certificate fails the row and says so", () => {
    const r = checkTlsProbe(
      "tls.443.ipv4",
      probe({ port: 443, protocol: "TLSv1.2", chain, authorized: false, authorizationError: "CERT_HAS_EXPIRED" }),
      "mail.example.org",
      at("2026-06-01T00:00:00Z"),
    );
    assert.equal(r.status, "fail");
    assert.equal(r.detail, "certificate expired on 2026-04-01");
  });
});

describe("DANE TLSA association matching (RFC 6698 2.1, RFC 7671, RFC 7672 3.1.3)", () => {
  const assoc = (usage: number, selector: number, matchingType: number, data: Buffer): TlsaAssociation => ({
    usage,
    selector,
    matchingType,
    data,
  });

  const cases: [string, TlsaAssociation, boolean][] = [
    ["3 1 1: SHA-256 of the server's SPKI", assoc(3, 1, 1, sha256(spki(leaf))), true],
    ["3 1 2: SHA-512 of the server's SPKI", assoc(3, 1, 2, sha512(spki(leaf))), true],
    ["3 1 0: the server's SPKI itself", assoc(3, 1, 0, spki(leaf)), true],
    ["3 0 1: SHA-256 of the whole server certificate", assoc(3, 0, 1, sha256(leaf)), true],
    ["3 0 0: the whole server certificate", assoc(3, 0, 0, leaf), true],
    ["2 0 1: SHA-256 of the issuing CA's certificate in the chain", assoc(2, 0, 1, sha256(ca)), true],
    ["2 1 1: SHA-256 of the issuing CA's SPKI", assoc(2, 1, 1, sha256(spki(ca))), true],
    ["3 1 1 of the CA's key: DANE-EE pins the server's own key only", assoc(3, 1, 1, sha256(spki(ca))), false],
    ["2 1 1 of the server's key: DANE-TA never matches the end entity", assoc(2, 1, 1, sha256(spki(leaf))), false],
    ["3 1 1 with another digest", assoc(3, 1, 1, Buffer.alloc(32, 7)), false],
    ["1 1 1 (PKIX-EE): not used for SMTP", assoc(1, 1, 1, sha256(spki(leaf))), false],
  ];
  for (const [name, a, expected] of cases) {
    test(`${name} -> ${expected ? "matches" : "no match"}`, () => {
      assert.equal(tlsaMatches(a, chain), expected);
    });
  }

  test("usable: usages 2 and 3, selectors 0 and 1, matching types 0, 1, 2", () => {
    assert.equal(tlsaUsable(assoc(3, 1, 1, Buffer.alloc(0))), true);
    assert.equal(tlsaUsable(assoc(2, 0, 2, Buffer.alloc(0))), true);
    assert.equal(tlsaUsable(assoc(0, 1, 1, Buffer.alloc(0))), false);
    assert.equal(tlsaUsable(assoc(3, 2, 1, Buffer.alloc(0))), false);
    assert.equal(tlsaUsable(assoc(3, 1, 3, Buffer.alloc(0))), false);
  });
});

describe("checkTlsa: records against what port 25 serves on each address", () => {
  const record = (certUsage: number, selector: number, match: number, data: Buffer) => {
    const copy = new Uint8Array(data.length);
    copy.set(data);
    return { certUsage, selector, match, data: copy.buffer };
  };
  const served = (address: string): TlsProbeResult => ({ port: 25, address, mode: "smtp-starttls", protocol: "TLSv1.3", ...trusted });
  const good = record(3, 1, 1, sha256(spki(leaf)));

  test("a 3 1 1 record matching every address passes", () => {
    const r = checkTlsa("mail.example.org", { ok: true, records: [good] }, [served("198.51.100.25"), served("2001:db8::1")], true);
    assert.equal(r.status, "pass");
    assert.match(r.detail, /^3 1 1 [0-9a-f]{16}\.\.\. matches 198\.51\.100\.25:25; 3 1 1 [0-9a-f]{16}\.\.\. matches \[2001:db8::1\]:25$/);
  });

  test("a record for another key fails: DANE senders would not deliver", () => {
    const r = checkTlsa("mail.example.org", { ok: true, records: [record(3, 1, 1, Buffer.alloc(32, 1))] }, [served("198.51.100.25")], true);
    assert.equal(r.status, "fail");
    assert.equal(r.detail, "no TLSA record matches the certificate served on 198.51.100.25:25: DANE senders will not deliver");
  });

  test("one matching record among stale ones is enough (key rollover publishes both)", () => {
    const r = checkTlsa("mail.example.org", { ok: true, records: [record(3, 1, 1, Buffer.alloc(32, 1)), good] }, [served("198.51.100.25")]);
    assert.equal(r.status, "pass");
  });

  test("port 25 unreachable: the records cannot be compared, a failure", () => {
    const r = checkTlsa("mail.example.org", { ok: true, records: [good] }, [
      { port: 25, address: "198.51.100.25", mode: "smtp-starttls", error: "connect: connection refused (nothing listens on the port)" },
    ]);
    assert.equal(r.status, "fail");
    assert.match(r.detail, /^cannot compare with 198\.51\.100\.25:25: connect: connection refused/);
  });

  test("only PKIX usages: no usable record for SMTP", () => {
    const r = checkTlsa("mail.example.org", { ok: true, records: [record(1, 1, 1, sha256(spki(leaf)))] }, [served("198.51.100.25")]);
    assert.equal(r.status, "fail");
    assert.match(r.detail, /no usable TLSA record .*RFC 7672 3\.1\.3/);
  });

  test("none published: a failure when planned, a pass (DANE is optional) otherwise", () => {
    assert.equal(checkTlsa("mail.example.org", { ok: true, records: [] }, [served("198.51.100.25")], true).status, "fail");
    assert.equal(checkTlsa("mail.example.org", { ok: true, records: [] }, [served("198.51.100.25")]).status, "pass");
  });

  test("a failed lookup fails with the resolver's error", () => {
    assert.deepEqual(checkTlsa("mail.example.org", { ok: false, error: "ESERVFAIL" }, []), {
      check: "tlsa",
      status: "fail",
      detail: "TLSA _25._tcp.mail.example.org: lookup failed (ESERVFAIL)",
      target: "_25._tcp.mail.example.org",
    });
  });
});
