import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import {
  checkMtaStsMx,
  checkMtaStsPolicy,
  checkMtaStsRecord,
  parseMtaStsTxt,
  policyUrl,
  type PolicyFetch,
} from "../../infra/cli/check-mtasts";
import { mtaStsId, mtaStsPolicy } from "../../components/records/mta-sts";
import type { DomainSpec } from "../../components/spec";
import { LEAF_PEM } from "../fixtures/certificates";
import { domainSpec } from "../fixtures/stack-spec";

const certificate = { chain: [new X509Certificate(LEAF_PEM).raw], authorized: true };
const now = new Date("2026-02-01T00:00:00Z");

function domain(mode: "enforce" | "testing" | "none", maxAge = 604800): DomainSpec {
  return domainSpec("example.org", { mtaSts: { mode, maxAge } });
}
const POLICY = mtaStsPolicy(domain("enforce"), ["mail.example.org"]);
const planned = { id: mtaStsId(POLICY), policy: POLICY, mode: "enforce" as const };
const served = (body: string, extra: Partial<PolicyFetch> = {}): PolicyFetch => ({
  url: policyUrl("example.org"),
  address: "198.51.100.25",
  status: 200,
  contentType: "text/plain; charset=utf-8",
  body,
  certificate,
  ...extra,
});
const ok = <T>(records: T[]) => ({ ok: true as const, records });

describe("the _mta-sts TXT record (RFC 8461 3.1)", () => {
  test("parseMtaStsTxt reads the id", () => {
    assert.deepEqual(parseMtaStsTxt("v=STSv1; id=20240101T000000;"), { id: "20240101T000000", problems: [] });
  });

  test("an id with other characters or over 32 long is refused", () => {
    assert.match(parseMtaStsTxt("v=STSv1; id=2024-01-01").problems.join(), /id=2024-01-01 is not 1-32 letters and digits/);
    assert.match(parseMtaStsTxt(`v=STSv1; id=${"a".repeat(33)}`).problems.join(), /is not 1-32/);
  });

  test("the planned id passes", () => {
    assert.deepEqual(checkMtaStsRecord("example.org", ok([`v=STSv1; id=${planned.id}`]), planned), {
      check: "mta-sts.record",
      status: "pass",
      detail: `id=${planned.id} (as planned)`,
      target: "_mta-sts.example.org",
    });
  });

  test("any other id is stale: a failure", () => {
    const r = checkMtaStsRecord("example.org", ok(["v=STSv1; id=20240101"]), planned);
    assert.equal(r.status, "fail");
    assert.equal(r.detail, `id=20240101 is stale: the planned policy has id=${planned.id}, so senders keep a cached older policy`);
  });

  test("without a plan any valid id passes", () => {
    assert.equal(checkMtaStsRecord("example.org", ok(["v=STSv1; id=20240101"])).status, "pass");
  });

  test("records not starting with v=STSv1; are ignored; two remaining fail", () => {
    assert.equal(checkMtaStsRecord("example.org", ok(["v=spf1 -all", "v=STSv1; id=1"])).status, "pass");
    assert.equal(checkMtaStsRecord("example.org", ok(["v=STSv1; id=1", "v=STSv1; id=2"])).status, "fail");
  });

  test("none: fails when planned, warns otherwise", () => {
    assert.equal(checkMtaStsRecord("example.org", ok([]), planned).status, "fail");
    assert.equal(checkMtaStsRecord("example.org", ok([])).status, "warn");
  });
});

describe("the policy file (RFC 8461 3.2, 3.3)", () => {
  test("the planned policy, served as text/plain with a valid certificate, passes", () => {
    assert.deepEqual(checkMtaStsPolicy("example.org", served(POLICY), now, planned), {
      check: "mta-sts.policy",
      status: "pass",
      detail: "mode enforce, max_age 604800, mx mail.example.org (as planned)",
      target: "https://mta-sts.example.org/.well-known/mta-sts.txt",
    });
  });

  test("a policy other than the planned one fails, naming both ids", () => {
    const other = mtaStsPolicy(domain("enforce", 1209600), ["mail.example.org"]);
    const r = checkMtaStsPolicy("example.org", served(other), now, planned);
    assert.equal(r.status, "fail");
    assert.equal(
      r.detail,
      `the served policy is not the planned one (served id ${mtaStsId(other)}, planned id ${planned.id}): redeploy the server`,
    );
  });

  test("mode testing warns", () => {
    assert.equal(checkMtaStsPolicy("example.org", served(mtaStsPolicy(domain("testing"), ["mail.example.org"])), now).status, "warn");
  });

  test("a redirect fails: senders do not follow it", () => {
    const r = checkMtaStsPolicy("example.org", served("", { status: 301 }), now);
    assert.equal(
      r.detail,
      "https://mta-sts.example.org/.well-known/mta-sts.txt answered HTTP 301 (senders do not follow redirects, RFC 8461 3.3)",
    );
  });

  test("another media type fails", () => {
    assert.match(
      checkMtaStsPolicy("example.org", served(POLICY, { contentType: "text/html" }), now).detail,
      /served as text\/html, not text\/plain/,
    );
  });

  test("an invalid policy fails with the parser's reason", () => {
    const r = checkMtaStsPolicy("example.org", served("version: STSv1\r\nmode: enforce\r\nmax_age: 86400\r\n"), now);
    assert.equal(r.status, "fail");
    assert.match(r.detail, /not a valid policy: Missing mx field/);
  });

  test("an expired certificate fails: senders ignore the policy", () => {
    const r = checkMtaStsPolicy("example.org", served(POLICY), new Date("2026-05-01T00:00:00Z"), planned);
    assert.equal(r.status, "fail");
    assert.equal(r.detail, "certificate expired on 2026-04-01 (senders ignore the policy)");
  });

  test("no address for the policy host, or no answer, fails", () => {
    assert.match(
      checkMtaStsPolicy("example.org", { url: policyUrl("example.org") }, now).detail,
      /mta-sts\.example\.org has no A or AAAA record/,
    );
    assert.match(
      checkMtaStsPolicy(
        "example.org",
        served("", { status: undefined, body: undefined, error: "connection refused (nothing listens on 443)" }),
        now,
      ).detail,
      /connection refused/,
    );
  });
});

describe("the policy's mx patterns against the MX hosts (RFC 8461 4.1)", () => {
  test("the MX host named in the policy passes", () => {
    assert.equal(checkMtaStsMx("example.org", served(POLICY), ok([{ exchange: "mail.example.org" }])).status, "pass");
  });

  test("a wildcard covers exactly one label", () => {
    const policy = "version: STSv1\r\nmode: enforce\r\nmx: *.example.org\r\nmax_age: 86400\r\n";
    assert.equal(checkMtaStsMx("example.org", served(policy), ok([{ exchange: "mx1.example.org" }])).status, "pass");
    assert.equal(checkMtaStsMx("example.org", served(policy), ok([{ exchange: "a.mx.example.org" }])).status, "fail");
  });

  test("an MX host outside the policy fails", () => {
    const r = checkMtaStsMx("example.org", served(POLICY), ok([{ exchange: "mail.example.org" }, { exchange: "backup.example.net" }]));
    assert.equal(r.status, "fail");
    assert.equal(r.detail, "MX backup.example.net matches no mx pattern of the policy (mail.example.org): senders refuse to deliver there");
  });

  test("mode none requires nothing; no policy fails", () => {
    assert.equal(
      checkMtaStsMx("example.org", served("version: STSv1\r\nmode: none\r\nmax_age: 86400\r\n"), ok([{ exchange: "x.example.net" }]))
        .status,
      "pass",
    );
    assert.equal(checkMtaStsMx("example.org", served("", { status: 404 }), ok([{ exchange: "mail.example.org" }])).status, "fail");
  });
});
