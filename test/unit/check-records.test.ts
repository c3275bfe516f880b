import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  checkAddresses,
  checkCaa,
  checkDmarc,
  checkMx,
  checkPtr,
  checkTlsrpt,
  parseCaaIssueValue,
  parseDmarc,
  parseTagList,
  parseTlsrpt,
  type PtrProbe,
} from "../../infra/cli/check-records";
import type { ExpectedCaa } from "../../infra/cli/check-expect";

const ok = <T>(records: T[]) => ({ ok: true as const, records });
const failed = (error: string) => ({ ok: false as const, error });

describe("parseTagList (RFC 6376 3.2)", () => {
  test("tags in order, whitespace around names and values ignored, trailing ; allowed", () => {
    const t = parseTagList(" v=DKIM1 ;  k = rsa; p=AB CD ;");
    assert.deepEqual(t.names, ["v", "k", "p"]);
    assert.deepEqual(
      [...t.tags],
      [
        ["v", "DKIM1"],
        ["k", "rsa"],
        ["p", "AB CD"],
      ],
    );
    assert.deepEqual(t.problems, []);
  });

  test("a tag named twice invalidates the list", () => {
    assert.deepEqual(parseTagList("v=DMARC1; p=none; p=reject").problems, ["tag p appears twice (RFC 6376 3.2)"]);
  });

  test("text that is not tag=value is a problem, as is an empty tag in the middle", () => {
    assert.deepEqual(parseTagList("v=STSv1; junk; ; id=1").problems, ['"junk" is not tag=value', 'empty tag between two ";"']);
  });
});

describe("checkMx (RFC 5321 5.1, RFC 7505)", () => {
  const planned = [{ host: "mail.example.org", priority: 10 }];

  test("the planned host at the planned preference passes", () => {
    assert.deepEqual(checkMx("example.org", ok([{ exchange: "mail.example.org", priority: 10 }]), planned), {
      check: "mx",
      status: "pass",
      detail: "10 mail.example.org (as planned)",
      target: "example.org",
    });
  });

  test("without a plan any MX passes, listed by preference", () => {
    const r = checkMx(
      "example.org",
      ok([
        { exchange: "b.example.org", priority: 20 },
        { exchange: "a.example.org", priority: 5 },
      ]),
    );
    assert.equal(r.status, "pass");
    assert.equal(r.detail, "5 a.example.org, 20 b.example.org");
  });

  test("no MX fails", () => {
    assert.equal(checkMx("example.org", ok([])).status, "fail");
  });

  test('a null MX (target ".") fails: the domain announces it takes no mail', () => {
    const r = checkMx("example.org", ok([{ exchange: "", priority: 0 }]));
    assert.equal(r.status, "fail");
    assert.match(r.detail, /^null MX \(RFC 7505\)/);
  });

  test("an MX host not in the plan fails: mail sent there misses the mail host", () => {
    const r = checkMx(
      "example.org",
      ok([
        { exchange: "mail.example.org", priority: 10 },
        { exchange: "backup.example.net", priority: 20 },
      ]),
      planned,
    );
    assert.equal(r.status, "fail");
    assert.equal(r.detail, "MX backup.example.net not in the plan: mail sent there does not reach the mail host");
  });

  test("the planned host missing fails and shows what is live", () => {
    const r = checkMx("example.org", ok([{ exchange: "old.example.org", priority: 10 }]), planned);
    assert.equal(r.status, "fail");
    assert.match(r.detail, /^mail\.example\.org is missing \(planned: 10 mail\.example\.org; live: 10 old\.example\.org\)/);
  });

  test("another preference for the planned host only warns", () => {
    const r = checkMx("example.org", ok([{ exchange: "mail.example.org.", priority: 20 }]), planned);
    assert.equal(r.status, "warn");
    assert.equal(r.detail, "mail.example.org has preference 20, the plan 10");
  });

  test("a failed lookup fails with the resolver's error code", () => {
    assert.equal(checkMx("example.org", failed("ETIMEOUT")).detail, "MX example.org: lookup failed (ETIMEOUT)");
  });
});

describe("checkAddresses: A/AAAA of the mail host", () => {
  test("the address given with --ipv4 passes when DNS has exactly it", () => {
    const r = checkAddresses(4, "mail.example.org", ok(["198.51.100.25"]), { planned: true, address: "198.51.100.25", source: "options" });
    assert.deepEqual(r, { check: "address.ipv4", status: "pass", detail: "198.51.100.25 (as planned)", target: "mail.example.org" });
  });

  test("another address fails, naming both", () => {
    const r = checkAddresses(4, "mail.example.org", ok(["198.51.100.99"]), { planned: true, address: "198.51.100.25", source: "options" });
    assert.equal(r.status, "fail");
    assert.equal(r.detail, "A is 198.51.100.99; the plan publishes 198.51.100.25");
  });

  test("an extra address beside the planned one fails: the plan publishes one", () => {
    const r = checkAddresses(4, "mail.example.org", ok(["198.51.100.25", "198.51.100.26"]), {
      planned: true,
      address: "198.51.100.25",
      source: "options",
    });
    assert.equal(r.status, "fail");
  });

  test("IPv6 compares canonical forms (RFC 5952)", () => {
    const r = checkAddresses(6, "mail.example.org", ok(["2001:0db8:0001:0000:0000:0000:0000:0001"]), {
      planned: true,
      address: "2001:db8:1::1",
      source: "options",
    });
    assert.equal(r.status, "pass");
  });

  test("the plan's ::1 convention: a host elsewhere in its /64 fails", () => {
    const r = checkAddresses(6, "mail.example.org", ok(["2001:db8:1::25"]), { planned: true, address: "2001:db8:1::1", source: "dns" });
    assert.equal(r.status, "fail");
  });

  test("an address the plan took from DNS passes and says how to compare with the server", () => {
    const r = checkAddresses(4, "mail.example.org", ok(["198.51.100.25"]), { planned: true, address: "198.51.100.25", source: "dns" });
    assert.equal(r.status, "pass");
    assert.match(r.detail, /pass --ipv4 ADDR to compare with the server/);
  });

  test("no A fails; no AAAA fails when planned and warns otherwise", () => {
    assert.equal(checkAddresses(4, "mail.example.org", ok([])).status, "fail");
    assert.equal(checkAddresses(6, "mail.example.org", ok([]), { planned: true, address: null, source: "unknown" }).status, "fail");
    assert.equal(checkAddresses(6, "mail.example.org", ok([])).status, "warn");
  });
});

describe("checkPtr: forward-confirmed reverse DNS", () => {
  const probe = (ptr: string[], forward: string[]): PtrProbe => ({
    address: "198.51.100.25",
    ptr: ok(ptr),
    forward: Object.fromEntries(ptr.map((n) => [n, ok(forward)])),
  });

  test("PTR names the host and the host resolves back: pass", () => {
    assert.deepEqual(checkPtr(4, "mail.example.org", [probe(["mail.example.org"], ["198.51.100.25"])]), {
      check: "ptr.ipv4",
      status: "pass",
      detail: "198.51.100.25 -> mail.example.org -> 198.51.100.25",
      target: "mail.example.org",
    });
  });

  test("no PTR fails", () => {
    assert.equal(checkPtr(4, "mail.example.org", [probe([], [])]).detail, "198.51.100.25 has no PTR record; it must name mail.example.org");
  });

  test("a PTR naming another host fails", () => {
    const r = checkPtr(4, "mail.example.org", [probe(["static.25.100.51.198.clients.example.net"], ["198.51.100.25"])]);
    assert.equal(r.status, "fail");
    assert.equal(r.detail, "PTR of 198.51.100.25 is static.25.100.51.198.clients.example.net, not the mail host mail.example.org");
  });

  test("a PTR whose name does not resolve back fails (not forward-confirmed)", () => {
    const r = checkPtr(4, "mail.example.org", [probe(["mail.example.org"], ["198.51.100.99"])]);
    assert.equal(r.status, "fail");
    assert.equal(
      r.detail,
      "PTR of 198.51.100.25 is mail.example.org, but mail.example.org resolves to 198.51.100.99, not back to 198.51.100.25",
    );
  });

  test("several PTR records including the host warn", () => {
    const p: PtrProbe = {
      address: "198.51.100.25",
      ptr: ok(["mail.example.org", "www.example.org"]),
      forward: { "mail.example.org": ok(["198.51.100.25"]), "www.example.org": ok([]) },
    };
    assert.equal(checkPtr(4, "mail.example.org", [p]).status, "warn");
  });

  test("IPv6 addresses compare canonically", () => {
    const p: PtrProbe = {
      address: "2001:db8:1::1",
      ptr: ok(["mail.example.org"]),
      forward: { "mail.example.org": ok(["2001:db8:1:0:0:0:0:1"]) },
    };
    assert.equal(checkPtr(6, "mail.example.org", [p]).status, "pass");
  });
});

describe("DMARC (RFC 7489)", () => {
  test("parseDmarc reads policy, subdomain policy and report URIs", () => {
    assert.deepEqual(parseDmarc("v=DMARC1; p=reject; sp=quarantine; rua=mailto:a@example.org,mailto:b@example.org!10m"), {
      policy: "reject",
      subdomainPolicy: "quarantine",
      rua: ["mailto:a@example.org", "mailto:b@example.org!10m"],
      problems: [],
    });
  });

  const problems: [string, RegExp][] = [
    ["p=reject; v=DMARC1", /does not start with v=DMARC1/],
    ["v=DMARC1; rua=mailto:a@example.org", /no p= policy/],
    ["v=DMARC1; p=rejct", /p=rejct is not one of none\|quarantine\|reject/],
    ["v=DMARC1; p=reject; adkim=x", /adkim=x is not r or s/],
    ["v=DMARC1; p=reject; pct=101", /pct=101 is not an integer 0\.\.100/],
    ["v=DMARC1; p=reject; rua=a@example.org", /rua: "a@example\.org" is not a mailto: or https: URI/],
  ];
  for (const [text, problem] of problems) {
    test(`"${text}" is refused: ${problem.source}`, () => {
      assert.match(parseDmarc(text).problems.join("; "), problem);
    });
  }

  test("checkDmarc: the planned record passes", () => {
    const text = "v=DMARC1; p=reject; sp=reject; adkim=r; aspf=r; rua=mailto:postmaster@example.org";
    const r = checkDmarc("example.org", ok([text, "some other txt"]), text);
    assert.deepEqual(r, {
      check: "dmarc",
      status: "pass",
      detail: "p=reject sp=reject rua=mailto:postmaster@example.org (as planned)",
      target: "_dmarc.example.org",
    });
  });

  test("checkDmarc: p=none warns (monitoring only)", () => {
    assert.equal(checkDmarc("example.org", ok(["v=DMARC1; p=none"])).status, "warn");
  });

  test("checkDmarc: two DMARC records fail (RFC 7489 6.6.3: no policy applies)", () => {
    assert.equal(checkDmarc("example.org", ok(["v=DMARC1; p=reject", "v=DMARC1; p=none"])).status, "fail");
  });

  test("checkDmarc: a record other than the planned one fails", () => {
    const r = checkDmarc("example.org", ok(["v=DMARC1; p=quarantine"]), "v=DMARC1; p=reject");
    assert.equal(r.status, "fail");
    assert.equal(r.detail, '"v=DMARC1; p=quarantine" differs from the plan: "v=DMARC1; p=reject"');
  });

  test("checkDmarc: none at all fails", () => {
    assert.equal(checkDmarc("example.org", ok(["v=spf1 -all"])).detail, "no v=DMARC1 record at _dmarc.example.org");
  });
});

describe("TLSRPT (RFC 8460 3)", () => {
  test("parseTlsrpt reads rua; mailto and https URIs are accepted", () => {
    assert.deepEqual(parseTlsrpt("v=TLSRPTv1; rua=mailto:tls@example.org,https://reports.example.org/tls"), {
      rua: ["mailto:tls@example.org", "https://reports.example.org/tls"],
      problems: [],
    });
  });

  test("no rua is a problem", () => {
    assert.deepEqual(parseTlsrpt("v=TLSRPTv1;").problems, ["no rua= (RFC 8460 3: required)"]);
  });

  test("missing: warns without a plan, fails when planned", () => {
    assert.equal(checkTlsrpt("example.org", ok([])).status, "warn");
    assert.equal(checkTlsrpt("example.org", ok([]), "v=TLSRPTv1; rua=mailto:postmaster@example.org").status, "fail");
  });

  test("published while the plan has none fails", () => {
    assert.equal(checkTlsrpt("example.org", ok(["v=TLSRPTv1; rua=mailto:x@example.org"]), null).status, "fail");
  });

  test("the planned record passes", () => {
    const text = "v=TLSRPTv1; rua=mailto:postmaster@example.org";
    assert.equal(checkTlsrpt("example.org", ok([text]), text).detail, "rua=mailto:postmaster@example.org (as planned)");
  });
});

describe("CAA (RFC 8659, RFC 8657)", () => {
  const planned = (accountUriUnknown: boolean): ExpectedCaa[] => [
    {
      tag: "issue",
      value: `letsencrypt.org; accounturi=${accountUriUnknown ? "https://acme-account.invalid/registered-at-pulumi-up" : "https://acme-v02.api.letsencrypt.org/acme/acct/1"}; validationmethods=dns-01,http-01`,
      accountUriUnknown,
    },
    { tag: "issuewild", value: ";", accountUriUnknown: false },
  ];
  const live = (issue: string) => ({
    name: "example.org",
    answer: ok([
      { critical: 0, issue },
      { critical: 0, issuewild: ";" },
    ]),
  });

  test("parseCaaIssueValue splits issuer and parameters", () => {
    const v = parseCaaIssueValue("LetsEncrypt.org; accounturi=https://a/1 ; validationmethods=dns-01");
    assert.equal(v.issuer, "letsencrypt.org");
    assert.deepEqual(
      [...v.params],
      [
        ["accounturi", "https://a/1"],
        ["validationmethods", "dns-01"],
      ],
    );
  });

  test("the planned properties pass, the account compared when known", () => {
    const r = checkCaa(
      "example.org",
      live("letsencrypt.org; accounturi=https://acme-v02.api.letsencrypt.org/acme/acct/1; validationmethods=dns-01,http-01"),
      planned(false),
    );
    assert.equal(r.status, "pass");
    assert.equal(r.detail, 'issue: letsencrypt.org; issuewild: ";" (as planned)');
  });

  test("another account fails", () => {
    const r = checkCaa(
      "example.org",
      live("letsencrypt.org; accounturi=https://acme-v02.api.letsencrypt.org/acme/acct/2; validationmethods=dns-01,http-01"),
      planned(false),
    );
    assert.equal(r.status, "fail");
  });

  test("an unknown account only needs accounturi to be there", () => {
    assert.equal(
      checkCaa("example.org", live("letsencrypt.org; accounturi=https://x/9; validationmethods=dns-01,http-01"), planned(true)).status,
      "pass",
    );
    const r = checkCaa("example.org", live("letsencrypt.org; validationmethods=dns-01,http-01"), planned(true));
    assert.equal(r.status, "fail");
    assert.match(r.detail, /accounturi=<your ACME account>/);
  });

  test("an issuer not in the plan fails", () => {
    const lookup = {
      name: "example.org",
      answer: ok([
        { critical: 0, issue: "letsencrypt.org; accounturi=https://x/9; validationmethods=dns-01,http-01" },
        { critical: 0, issue: "sectigo.com" },
        { critical: 0, issuewild: ";" },
      ]),
    };
    const r = checkCaa("example.org", lookup, planned(true));
    assert.equal(r.status, "fail");
    assert.equal(r.detail, 'issue "sectigo.com" not in the plan');
  });

  test("node's `type` field is not a property", () => {
    const lookup = { name: "example.org", answer: ok([{ critical: 0, issue: "letsencrypt.org", type: "CAA" } as never]) };
    assert.equal(checkCaa("example.org", lookup).detail, "issue: letsencrypt.org");
  });

  test("inherited from a parent domain: said so", () => {
    const r = checkCaa("mail.example.org", { name: "example.org", answer: ok([{ critical: 0, issue: "letsencrypt.org" }]) });
    assert.equal(r.detail, "issue: letsencrypt.org (inherited from example.org)");
  });

  test("a critical unknown tag fails: no CA will issue (RFC 8659 4.1)", () => {
    const r = checkCaa("example.org", {
      name: "example.org",
      answer: ok([{ critical: 128, issue: "letsencrypt.org" }, { critical: 128, contactemail: "x@example.org" } as never]),
    });
    assert.equal(r.status, "fail");
  });

  test("none: warns without a plan, fails when planned", () => {
    assert.equal(checkCaa("example.org", { name: "example.org", answer: ok([]) }).status, "warn");
    assert.equal(checkCaa("example.org", { name: "example.org", answer: ok([]) }, planned(true)).status, "fail");
  });
});
