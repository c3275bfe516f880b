import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { checkSpf, evaluateSpf, parseSpf, spfRecords, type SpfVerdict } from "../../infra/cli/check-spf";

const ok = <T>(records: T[]) => ({ ok: true as const, records });
const passes = (...addresses: string[]): SpfVerdict[] => addresses.map((address) => ({ address, result: "pass" }));

describe("spfRecords (RFC 7208 4.5)", () => {
  test("v=spf1 alone or followed by a space, in any case; nothing else", () => {
    assert.deepEqual(spfRecords(["v=spf1 -all", "V=SPF1", "v=spf10 -all", "google-site-verification=x", "v=spf1"]), [
      "v=spf1 -all",
      "V=SPF1",
      "v=spf1",
    ]);
  });
});

describe("parseSpf (RFC 7208 section 12)", () => {
  test("the planner's record: ip4, ip6, -all, no lookups, no problems", () => {
    const p = parseSpf("v=spf1 ip4:198.51.100.25 ip6:2001:db8:1::1 include:_spf.example.net -all");
    assert.deepEqual(p.problems, []);
    assert.equal(p.lookups, 1);
    assert.deepEqual(
      p.terms.map((t) => `${t.qualifier}${t.name}${t.value === undefined ? "" : `:${t.value}`}`),
      ["+ip4:198.51.100.25", "+ip6:2001:db8:1::1", "+include:_spf.example.net", "-all"],
    );
  });

  test("a, mx with cidr lengths and modifiers parse; ptr warns (RFC 7208 5.5)", () => {
    const p = parseSpf("v=spf1 a mx:example.org/24//64 a/28 ptr ~all exp=explain.example.org");
    assert.deepEqual(p.problems, []);
    assert.equal(p.lookups, 4);
    assert.deepEqual(p.warnings, ['"ptr": ptr is slow and unreliable, RFC 7208 5.5 says not to use it']);
  });

  const bad: [string, RegExp][] = [
    ["v=spf1 ip4:198.51.100.300 -all", /"ip4:198\.51\.100\.300": "198\.51\.100\.300" is not an IPv4 address or network/],
    ["v=spf1 ip4:198.51.100.0/33 -all", /is not an IPv4 address or network/],
    ["v=spf1 ip6:2001:db8::/129 -all", /is not an IPv6 address or network/],
    ["v=spf1 include -all", /include needs a domain/],
    ["v=spf1 all:example.org", /all takes no argument/],
    ["v=spf1 ipv4:198.51.100.1 -all", /"ipv4:198\.51\.100\.1" is not an SPF mechanism or modifier/],
    ["v=spf1 redirect=a.example redirect=b.example", /redirect= appears twice/],
    [
      `v=spf1 ${Array.from({ length: 11 }, (_, i) => `include:i${i}.example.org`).join(" ")} -all`,
      /11 terms need DNS lookups, more than 10/,
    ],
  ];
  for (const [record, problem] of bad) {
    test(`refused: ${record.slice(0, 60)}`, () => {
      assert.match(parseSpf(record).problems.join("; "), problem);
    });
  }
});

describe("checkSpf: one record, valid, authorizing the mail host, as planned", () => {
  const planned = "v=spf1 ip4:198.51.100.25 ip6:2001:db8:1::1 -all";

  test("the planned record authorizing both addresses passes", () => {
    assert.deepEqual(checkSpf("spf.domain", "example.org", ok([planned, "other=1"]), passes("198.51.100.25", "2001:db8:1::1"), planned), {
      check: "spf.domain",
      status: "pass",
      detail: `"${planned}"; authorizes 198.51.100.25, 2001:db8:1::1 (as planned)`,
      target: "example.org",
    });
  });

  test("an address the record does not authorize fails with the evaluator's result", () => {
    const r = checkSpf("spf.helo", "mail.example.org", ok([planned]), [
      { address: "198.51.100.25", result: "pass" },
      { address: "2001:db8:1::1", result: "fail" },
    ]);
    assert.equal(r.status, "fail");
    assert.match(r.detail, /does not authorize the mail host: 2001:db8:1::1 fail$/);
  });

  test("two SPF records fail (permerror)", () => {
    assert.match(
      checkSpf("spf.domain", "example.org", ok([planned, "v=spf1 -all"]), passes()).detail,
      /^2 v=spf1 records at example\.org \(RFC 7208 4\.5: permerror\)/,
    );
  });

  test("none fails", () => {
    assert.equal(checkSpf("spf.domain", "example.org", ok([]), []).detail, "no v=spf1 record at example.org");
  });

  test("a valid record other than the planned one fails", () => {
    const r = checkSpf(
      "spf.domain",
      "example.org",
      ok(["v=spf1 ip4:198.51.100.25 ip6:2001:db8:1::1 ~all"]),
      passes("198.51.100.25"),
      planned,
    );
    assert.equal(r.status, "fail");
    assert.match(r.detail, /differs from the plan/);
  });

  test("+all fails: it authorizes everyone", () => {
    assert.equal(checkSpf("spf.domain", "example.org", ok(["v=spf1 +all"]), passes("198.51.100.25")).status, "fail");
  });

  test("?all or no all warns: other hosts are neutral, not refused", () => {
    assert.equal(checkSpf("spf.domain", "example.org", ok(["v=spf1 ip4:198.51.100.25 ?all"]), passes("198.51.100.25")).status, "warn");
    assert.equal(checkSpf("spf.domain", "example.org", ok(["v=spf1 ip4:198.51.100.25"]), passes("198.51.100.25")).status, "warn");
  });

  test("a plan whose SPF depends on unknown addresses (null) compares nothing", () => {
    assert.equal(checkSpf("spf.domain", "example.org", ok(["v=spf1 ip4:198.51.100.9 -all"]), passes("198.51.100.9"), null).status, "pass");
  });
});

describe("evaluateSpf: mailauth's RFC 7208 evaluation over the given resolver", () => {
  const zone: Record<string, string[][]> = {
    "example.org": [["v=spf1 ip4:198.51.100.25 include:_spf.example.org -all"]],
    "_spf.example.org": [["v=spf1 ip6:2001:db8:1::/64 -all"]],
  };
  const resolve = async (name: string, rrtype: string) => {
    const records = rrtype === "TXT" ? zone[name.toLowerCase()] : undefined;
    if (!records) throw Object.assign(new Error(`no ${rrtype} for ${name}`), { code: "ENODATA" });
    return records;
  };

  test("addresses in the record and in an include pass; others fail", async () => {
    assert.equal((await evaluateSpf(resolve, "postmaster@example.org", "mail.example.org", "198.51.100.25", 5000)).result, "pass");
    assert.equal((await evaluateSpf(resolve, "postmaster@example.org", "mail.example.org", "2001:db8:1::1", 5000)).result, "pass");
    assert.equal((await evaluateSpf(resolve, "postmaster@example.org", "mail.example.org", "198.51.100.99", 5000)).result, "fail");
  });

  test("a resolver failure is a temperror, not an exception", async () => {
    const broken = async () => {
      throw Object.assign(new Error("timeout"), { code: "ETIMEOUT" });
    };
    assert.equal((await evaluateSpf(broken, "postmaster@example.org", "mail.example.org", "198.51.100.25", 5000)).result, "temperror");
  });
});
