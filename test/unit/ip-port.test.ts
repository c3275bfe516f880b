// "IP[:port]" as maild's config, the stack file and `mailstack check --resolver` write a DNS server.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { formatIpPort, parseIpPort } from "../../components/shared/ip-port";

describe("parseIpPort takes the forms dns.Resolver#setServers accepts, and nothing else", () => {
  const cases: [string, ReturnType<typeof parseIpPort>][] = [
    ["198.51.100.53", { ip: "198.51.100.53" }],
    ["198.51.100.53:5353", { ip: "198.51.100.53", port: 5353 }],
    ["2001:db8::53", { ip: "2001:db8::53" }],
    ["[2001:db8::53]", { ip: "2001:db8::53" }],
    ["[2001:db8::53]:65535", { ip: "2001:db8::53", port: 65535 }],
    ["[2001:db8::53]:65536", undefined],
    ["198.51.100.53:0", undefined],
    ["[198.51.100.53]:53", undefined],
    ["198.51.100.256:53", undefined],
    ["ns1.example.org", undefined],
    ["ns1.example.org:53", undefined],
    ["", undefined],
  ];
  for (const [input, expected] of cases) {
    test(`${JSON.stringify(input)} -> ${expected ? JSON.stringify(expected) : "refused"}`, () =>
      assert.deepEqual(parseIpPort(input), expected));
  }
});

test("formatIpPort writes IPv6 with a port in brackets, and an address without a port bare", () => {
  assert.equal(formatIpPort({ ip: "2001:db8::53", port: 53 }), "[2001:db8::53]:53");
  assert.equal(formatIpPort({ ip: "198.51.100.53", port: 5353 }), "198.51.100.53:5353");
  assert.equal(formatIpPort({ ip: "2001:db8::53" }), "2001:db8::53");
});
