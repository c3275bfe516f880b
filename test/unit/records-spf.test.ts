import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { domainSpf, heloSpf } from "../../components/records/spf";
import type { SpfSpec } from "../../components/spec";

const none: SpfSpec = { ip4: [], ip6: [], include: [], all: "-all" };

describe("domainSpf (RFC 7208)", () => {
  const cases: { name: string; spf: SpfSpec; expected: string }[] = [
    {
      name: "only the server's own addresses, ending -all",
      spf: none,
      expected: "v=spf1 ip4:198.51.100.25 ip6:2001:db8:1::1 -all",
    },
    {
      name: "extra ip4/ip6 senders follow the server's addresses",
      spf: { ...none, ip4: ["203.0.113.0/24"], ip6: ["2001:DB8:2::/48"] },
      expected: "v=spf1 ip4:198.51.100.25 ip6:2001:db8:1::1 ip4:203.0.113.0/24 ip6:2001:db8:2::/48 -all",
    },
    {
      name: "includes come after the address mechanisms",
      spf: {
        ...none,
        include: [
          { domain: "_spf.example.net", lookups: 1 },
          { domain: "spf.example.com", lookups: 2 },
        ],
      },
      expected: "v=spf1 ip4:198.51.100.25 ip6:2001:db8:1::1 include:_spf.example.net include:spf.example.com -all",
    },
    {
      name: "a configured ~all is kept",
      spf: { ...none, all: "~all" },
      expected: "v=spf1 ip4:198.51.100.25 ip6:2001:db8:1::1 ~all",
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.equal(domainSpf(c.spf, "198.51.100.25", "2001:db8:1:0::1"), c.expected);
    });
  }

  test("the server's IPv6 address is written in RFC 5952 form", () => {
    assert.equal(
      domainSpf(none, "198.51.100.25", "2001:0DB8:0001:0000:0000:0000:0000:0001"),
      "v=spf1 ip4:198.51.100.25 ip6:2001:db8:1::1 -all",
    );
  });

  test("uses no mechanism that costs a DNS lookup unless includes are configured (RFC 7208 4.6.4)", () => {
    assert.doesNotMatch(domainSpf(none, "198.51.100.25", "2001:db8:1::1"), /\b(a|mx|ptr|exists|include|redirect)[:= ]/);
  });
});

describe("heloSpf (RFC 7208 2.3)", () => {
  test("allows exactly the host's two addresses and fails everything else", () => {
    assert.equal(heloSpf("198.51.100.25", "2001:db8:1::1"), "v=spf1 ip4:198.51.100.25 ip6:2001:db8:1::1 -all");
  });
});
