// The transport's decisions for one established connection (judgeTls) and for one reply
// (resultFromReply); the live behaviour is in test/integration/outbound-transport.test.ts.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, X509Certificate } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { makeTestTls } from "../../infra/local-internet/test-tls";
import { judgeTls, type HostPolicy, type TlsObservation } from "../../server-bootstrap/maild/outbound/tls-policy";
import { resultFromReply } from "../../server-bootstrap/maild/outbound/recipient-results";
import type { StsPolicy } from "../../server-bootstrap/maild/outbound/mta-sts";

let dir = "";
let leaf: X509Certificate;
let ca: X509Certificate;
before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "tls-policy-test-"));
  const t = await makeTestTls(dir, ["mx.example.org"], "mx");
  leaf = new X509Certificate(fs.readFileSync(t.certPath));
  ca = new X509Certificate(t.caPem);
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const sts = (mode: StsPolicy["mode"]): StsPolicy => ({ id: "1", mode, mx: ["mx.example.org"], maxAge: 86400, text: "", fetchedAt: 0 });
const enforce: HostPolicy = { type: "sts", policy: sts("enforce"), enforce: true, mxAllowed: true };
const testing: HostPolicy = { type: "sts", policy: sts("testing"), enforce: false, mxAllowed: true };
const none: HostPolicy = { type: "none" };
const plain = (): TlsObservation => ({ secure: false, chain: [] });
const trusted = (): TlsObservation => ({ secure: true, chain: [leaf, ca], protocol: "TLSv1.3" });
const selfSigned = (): TlsObservation => ({ secure: true, chain: [leaf, ca], verifyError: "DEPTH_ZERO_SELF_SIGNED_CERT" });

function tlsa(usage: number, cert: X509Certificate): HostPolicy {
  return {
    type: "tlsa",
    records: [
      {
        usage,
        selector: 1,
        matchingType: 1,
        data: createHash("sha256")
          .update(cert.publicKey.export({ type: "spki", format: "der" }))
          .digest(),
      },
    ],
  };
}

describe("TLS decision per connection", () => {
  test("without a policy, nothing blocks delivery, but problems are counted", () => {
    assert.deepEqual(judgeTls(none, "mx.example.org", trusted()), { result: "success", block: false });
    assert.equal(judgeTls(none, "mx.example.org", plain()).result, "starttls-not-supported");
    assert.equal(judgeTls(none, "mx.example.org", plain()).block, false);
    assert.deepEqual(judgeTls(none, "mx.example.org", selfSigned()), {
      result: "certificate-not-trusted",
      reason: "DEPTH_ZERO_SELF_SIGNED_CERT",
      block: false,
    });
    assert.equal(judgeTls(none, "other.example.org", trusted()).result, "certificate-host-mismatch");
  });

  test("MTA-STS enforce needs STARTTLS and a trusted certificate for the MX name (RFC 8461 4.2)", () => {
    assert.deepEqual(judgeTls(enforce, "mx.example.org", trusted()), { result: "success", block: false });
    assert.deepEqual(judgeTls(enforce, "mx.example.org", plain()), {
      result: "starttls-not-supported",
      reason: "no TLS session (STARTTLS not offered or refused)",
      block: true,
    });
    assert.deepEqual(judgeTls(enforce, "mx.example.org", selfSigned()), {
      result: "certificate-not-trusted",
      reason: "DEPTH_ZERO_SELF_SIGNED_CERT",
      block: true,
    });
    assert.deepEqual(judgeTls(enforce, "mx.example.org", { ...trusted(), verifyError: "CERT_HAS_EXPIRED" }).result, "certificate-expired");
    const mismatch = judgeTls(enforce, "mx2.example.org", trusted());
    assert.deepEqual([mismatch.result, mismatch.block], ["certificate-host-mismatch", true]);
  });

  test("MTA-STS testing reports the same problems and never blocks (RFC 8461 5)", () => {
    assert.deepEqual(judgeTls(testing, "mx.example.org", selfSigned()), {
      result: "certificate-not-trusted",
      reason: "DEPTH_ZERO_SELF_SIGNED_CERT",
      block: false,
    });
    assert.equal(judgeTls(testing, "mx.example.org", plain()).block, false);
    const unlisted = judgeTls({ ...testing, mxAllowed: false } as HostPolicy, "mx.example.org", trusted());
    assert.deepEqual([unlisted.result, unlisted.block], ["validation-failure", false]);
  });

  test("DANE needs STARTTLS and a chain matching the TLSA records; the Web PKI verdict does not matter (RFC 7672)", () => {
    assert.deepEqual(judgeTls(tlsa(3, leaf), "mx.example.org", selfSigned()), { result: "success", block: false });
    assert.deepEqual(judgeTls(tlsa(2, ca), "mx.example.org", selfSigned()), { result: "success", block: false });
    assert.equal(judgeTls(tlsa(3, leaf), "mx.example.org", plain()).block, true);
    const wrong = judgeTls(tlsa(3, ca), "mx.example.org", trusted());
    assert.deepEqual([wrong.result, wrong.block], ["tlsa-invalid", true]);
  });

  test("DANE with only unusable records still demands TLS, without authentication", () => {
    const pkixOnly = tlsa(1, leaf);
    assert.equal(judgeTls(pkixOnly, "mx.example.org", selfSigned()).block, false);
    assert.equal(judgeTls(pkixOnly, "mx.example.org", plain()).block, true);
  });
});

describe("recipient result from an SMTP reply", () => {
  test("5yz is a permanent failure with the server's enhanced code and text kept", () => {
    assert.deepEqual(resultFromReply("bob@example.org", "550 5.1.1 <bob@example.org>: Recipient address rejected", "mx.example.org"), {
      recipient: "bob@example.org",
      status: "failed",
      enhancedCode: "5.1.1",
      diagnostic: "550 5.1.1 <bob@example.org>: Recipient address rejected",
      remoteReply: true,
      remoteMta: "mx.example.org",
    });
  });

  test("4yz is deferred", () => {
    const r = resultFromReply("bob@example.org", "451 4.7.1 greylisted, try later", "mx.example.org");
    assert.deepEqual([r.status, r.enhancedCode], ["deferred", "4.7.1"]);
  });

  test("2yz is delivered", () => {
    const r = resultFromReply("bob@example.org", "250 2.0.0 Ok: queued as 4Bc", "mx.example.org");
    assert.deepEqual([r.status, r.enhancedCode], ["delivered", "2.0.0"]);
  });

  test("a missing or contradicting enhanced code falls back to the reply's class", () => {
    assert.equal(resultFromReply("b@x.example", "550 no such user", "mx").enhancedCode, "5.0.0");
    assert.equal(resultFromReply("b@x.example", "550 4.1.1 confused", "mx").enhancedCode, "5.0.0");
    assert.equal(resultFromReply("b@x.example", "421 closing", "mx").enhancedCode, "4.0.0");
  });

  test("a multi-line reply becomes one line", () => {
    assert.equal(
      resultFromReply("b@x.example", "550-5.7.1 policy\r\n550 5.7.1 see https://example.org", "mx").diagnostic,
      "550-5.7.1 policy 550 5.7.1 see https://example.org",
    );
  });
});
