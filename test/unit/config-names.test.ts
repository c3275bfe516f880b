import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { normaliseDomain, parseCidr, parseEmail } from "../../components/config/name-syntax";
import { argon2idProblem } from "../../components/shared/argon2id";
import { spfLookupCount } from "../../components/config/spf-lookups";

describe("normaliseDomain", () => {
  const good: [string, string][] = [
    ["Example.ORG", "example.org"],
    ["example.org.", "example.org"],
    ["bücher.example", "xn--bcher-kva.example"],
    ["xn--bcher-kva.example", "xn--bcher-kva.example"],
    ["a-b.c-d.example", "a-b.c-d.example"],
    [`${"a".repeat(63)}.example`, `${"a".repeat(63)}.example`],
  ];
  for (const [input, output] of good) {
    test(`accepts ${JSON.stringify(input)} as ${output}`, () => {
      assert.deepEqual(normaliseDomain(input), { ok: true, value: output });
    });
  }

  const bad: [string, string][] = [
    ["example.org..", "has an empty label"],
    ["a%41.example", `contains "%"`],
    ["a/b.example", `contains "/"`],
    [`${"a".repeat(64)}.example`, "is 64 characters long; at most 63"],
    [`${"abcdefghi.".repeat(26)}example`, "characters long; at most 253"],
    ["-a.example", "starts or ends with a hyphen"],
    ["org", "needs at least two labels"],
    ["_dmarc.example.org", `label "_dmarc" may hold only letters, digits and hyphens`],
  ];
  for (const [input, reason] of bad) {
    test(`refuses ${JSON.stringify(input.length > 40 ? `${input.slice(0, 37)}...` : input)}: ${reason}`, () => {
      const result = normaliseDomain(input);
      assert.equal(result.ok, false);
      assert.ok(!result.ok && result.reason.includes(reason), JSON.stringify(result));
    });
  }

  test("accepts underscores only when asked (SPF include targets)", () => {
    assert.deepEqual(normaliseDomain("_spf.example.com", { underscore: true }), { ok: true, value: "_spf.example.com" });
  });
});

describe("parseEmail", () => {
  test("splits an address and normalises only its domain", () => {
    assert.deepEqual(parseEmail("First.Last+tag@Bücher.Example"), {
      ok: true,
      value: { local: "First.Last+tag", domain: "xn--bcher-kva.example", address: "First.Last+tag@xn--bcher-kva.example" },
    });
  });
  test("refuses a local part over 64 octets", () => {
    const result = parseEmail(`${"a".repeat(65)}@example.org`);
    assert.ok(!result.ok && result.reason.includes("65 octets long; at most 64"));
  });
  test("refuses a quoted local part (not a dot-atom)", () => {
    const result = parseEmail(`"a b"@example.org`);
    assert.ok(!result.ok && result.reason.includes("is not an RFC 5322 dot-atom"));
  });
});

describe("parseCidr", () => {
  test("accepts networks whose host bits are zero, lowercased", () => {
    assert.deepEqual(parseCidr("2001:DB8:FFFF::/48"), { ok: true, value: "2001:db8:ffff::/48" });
    assert.deepEqual(parseCidr("0.0.0.0/0"), { ok: true, value: "0.0.0.0/0" });
    assert.deepEqual(parseCidr("::ffff:192.0.2.0/120"), { ok: true, value: "::ffff:192.0.2.0/120" });
  });
  test("names the network when host bits are set", () => {
    assert.deepEqual(parseCidr("2001:db8:ffff:1::/48"), { ok: false, reason: "has host bits set; the network is 2001:db8:ffff::/48" });
    assert.deepEqual(parseCidr("198.51.100.77/25"), { ok: false, reason: "has host bits set; the network is 198.51.100.0/25" });
  });
  test("refuses scoped IPv6 addresses and leading-zero octets", () => {
    assert.equal(parseCidr("fe80::1%eth0/64").ok, false);
    assert.equal(parseCidr("010.0.0.0/8").ok, false);
  });
  test("accepts a bare address only when asked, and only of the asked family", () => {
    assert.deepEqual(parseCidr("192.0.2.1", { bareAddress: true, family: 4 }), { ok: true, value: "192.0.2.1" });
    assert.equal(parseCidr("192.0.2.1", { bareAddress: true, family: 6 }).ok, false);
  });
});

describe("argon2idProblem", () => {
  test("accepts a hash made by the argon2 CLI", () => {
    assert.equal(
      argon2idProblem("$argon2id$v=19$m=65536,t=3,p=1$RTM4WUlyZ1k4L042dXdKUjNkWUEzdz09$Lsw4zm1ITmFdx9Kt4fL3aW1rNi7TCDLzvs3pWrNqcGA"),
      undefined,
    );
  });
  test("refuses memory below 8 KiB per lane (RFC 9106 3.1)", () => {
    const problem = argon2idProblem(
      "$argon2id$v=19$m=16,t=3,p=4$RTM4WUlyZ1k4L042dXdKUjNkWUEzdz09$Lsw4zm1ITmFdx9Kt4fL3aW1rNi7TCDLzvs3pWrNqcGA",
    );
    assert.ok(problem?.includes("memory must be from 8*p KiB"));
  });
});

describe("spfLookupCount", () => {
  test("sums what each include costs (RFC 7208 4.6.4)", () => {
    assert.equal(
      spfLookupCount([
        { domain: "a.example", lookups: 1 },
        { domain: "b.example", lookups: 4 },
      ]),
      5,
    );
    assert.equal(spfLookupCount([]), 0);
  });
});
