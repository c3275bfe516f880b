import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { canonicalIpv4, canonicalIpv6, reverseName } from "../../components/records/address";

describe("canonicalIpv6 (RFC 5952 4)", () => {
  const cases: [string, string][] = [
    ["2001:DB8:0:0:0:0:0:1", "2001:db8::1"],
    ["2001:0db8:0001:0000:0000:0000:0000:0001", "2001:db8:1::1"],
    ["2001:db8::", "2001:db8::"],
    ["::", "::"],
    ["0:0:0:0:0:0:0:1", "::1"],
    ["2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1"],
    ["1:0:0:2:0:0:0:3", "1:0:0:2::3"],
    ["2001:db8:1:0:0:1:0:0", "2001:db8:1::1:0:0"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ["::ffff:198.51.100.1", "::ffff:c633:6401"],
  ];
  for (const [input, expected] of cases) {
    test(`${input} -> ${expected}`, () => {
      assert.equal(canonicalIpv6(input), expected);
    });
  }

  for (const bad of ["1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", "::g", "1:2:3:4:5:6:7", "", "198.51.100.1"]) {
    test(`rejects ${JSON.stringify(bad)} naming it`, () => {
      assert.throws(() => canonicalIpv6(bad), new RegExp(`"${bad.replace(/\./g, "\\.")}" is not an IPv6 address`));
    });
  }
});

describe("canonicalIpv4", () => {
  test("keeps a dotted quad", () => {
    assert.equal(canonicalIpv4("198.51.100.25"), "198.51.100.25");
  });
  for (const bad of ["1.2.3", "256.1.1.1", "1.2.3.4.5", "a.b.c.d", "1.2.3.1234"]) {
    test(`rejects ${bad}`, () => {
      assert.throws(() => canonicalIpv4(bad), /is not an IPv4 address/);
    });
  }
});

describe("reverseName", () => {
  test("IPv4 octets reversed under in-addr.arpa (RFC 1035 3.5)", () => {
    assert.equal(reverseName("198.51.100.25"), "25.100.51.198.in-addr.arpa");
  });
  test("IPv6 nibbles reversed under ip6.arpa (RFC 3596 2.5)", () => {
    assert.equal(reverseName("2001:db8:1::1"), "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
  });
});
