// Blocklist lookups of our own server (components/shared/dnsbl.ts): RFC 5782 query names, what
// an answer means, and the test-entry rule that keeps a refusing list from reading as "clean".
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  blocklistQueryName,
  blocklistZone,
  checkBlocklists,
  interpretCodes,
  isNonPublicAddress,
  type BlocklistDns,
} from "../../components/shared/dnsbl";

describe("blocklistQueryName follows RFC 5782 2.1 and 2.4", () => {
  test("IPv4: reversed octets under the zone", () =>
    assert.equal(blocklistQueryName("192.0.2.99", "zen.spamhaus.org"), "99.2.0.192.zen.spamhaus.org"));
  test("IPv6: 32 reversed nibbles under the zone", () =>
    assert.equal(
      blocklistQueryName("2001:db8:1::b", "bl.example.test"),
      "b.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.bl.example.test",
    ));
  test("a domain: itself, lowercased, under the zone", () =>
    assert.equal(blocklistQueryName("Example.ORG.", "dbl.spamhaus.org"), "example.org.dbl.spamhaus.org"));
});

describe("interpretCodes", () => {
  const zen = blocklistZone("zen.spamhaus.org", "ip");
  test("no A record is not listed", () => assert.deepEqual(interpretCodes(zen, []), { status: "clear" }));
  test("127.0.0.2 is listed", () => assert.deepEqual(interpretCodes(zen, ["127.0.0.2"]), { status: "listed" }));
  test("Spamhaus's open-resolver code is a refusal, not a listing", () =>
    assert.deepEqual(interpretCodes(zen, ["127.255.255.254"]), {
      status: "error",
      reason: "Spamhaus refuses queries through public or open resolvers: use the box's own resolver",
    }));
  test("an answer outside 127.0.0.0/8 is a rewriting resolver", () =>
    assert.equal(interpretCodes(blocklistZone("bl.example.test", "ip"), ["198.51.100.7"]).status, "error"));
});

test("loopback, private and link-local addresses are never asked about", () => {
  for (const ip of ["127.0.0.1", "10.1.2.3", "172.20.0.1", "192.168.1.1", "::1", "fd00::1", "fe80::1"])
    assert.ok(isNonPublicAddress(ip), ip);
  for (const ip of ["198.51.100.2", "2001:db8:1::2"]) assert.ok(!isNonPublicAddress(ip), ip);
});

/** A zone's answers as a map from query name to A records (absent: NXDOMAIN), TXT beside them. */
function fakeDns(a: Record<string, string[]>, txt: Record<string, string[]> = {}, fail: string[] = []): BlocklistDns & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    resolve4: async (name) => {
      asked.push(name);
      if (fail.includes(name)) throw Object.assign(new Error("timeout"), { code: "ETIMEOUT" });
      return a[name] ?? [];
    },
    resolveTxt: async (name) => txt[name] ?? [],
  };
}

describe("checkBlocklists", () => {
  const zone = blocklistZone("bl.example.test", "ip");
  const targets = { ips: ["198.51.100.2", "2001:db8:1::2", "10.0.0.1"], domains: ["example.org"] };

  test("a listed address comes with the list's TXT reason and a lookup link; the others are clear", async () => {
    const dns = fakeDns(
      { "2.0.0.127.bl.example.test": ["127.0.0.2"], "2.100.51.198.bl.example.test": ["127.0.0.3"] },
      { "2.100.51.198.bl.example.test": ["Listed for spam, see https://bl.example.test/198.51.100.2"] },
    );
    const results = await checkBlocklists(targets, [zone], dns);
    assert.deepEqual(results, [
      {
        zone: "bl.example.test",
        kind: "ip",
        target: "198.51.100.2",
        status: "listed",
        codes: ["127.0.0.3"],
        reason: "Listed for spam, see https://bl.example.test/198.51.100.2",
        delistUrl: "https://multirbl.valli.org/lookup/198.51.100.2.html",
      },
      { zone: "bl.example.test", kind: "ip", target: "2001:db8:1::2", status: "clear", codes: [] },
    ]);
    assert.ok(!dns.asked.some((n) => n.startsWith("1.0.0.10.")), "the private address is not asked");
  });

  test("a list that does not list its RFC 5782 test entry gives no verdict (error), never clear", async () => {
    const results = await checkBlocklists(targets, [zone], fakeDns({}));
    assert.deepEqual(
      results.map((r) => [r.target, r.status]),
      [
        ["198.51.100.2", "error"],
        ["2001:db8:1::2", "error"],
      ],
    );
    assert.match(results[0].reason!, /does not list its test entry 127\.0\.0\.2/);
  });

  test("an IPv4-only list is not asked about IPv6 addresses; a domain list is asked about domains", async () => {
    const spamcop = blocklistZone("bl.spamcop.net", "ip");
    const dbl = blocklistZone("dbl.spamhaus.org", "domain");
    const dns = fakeDns({ "2.0.0.127.bl.spamcop.net": ["127.0.0.2"], "dbltest.com.dbl.spamhaus.org": ["127.0.1.2"] });
    const results = await checkBlocklists(targets, [spamcop, dbl], dns);
    assert.deepEqual(
      results.map((r) => `${r.zone} ${r.target} ${r.status}`),
      ["bl.spamcop.net 198.51.100.2 clear", "dbl.spamhaus.org example.org clear"],
    );
  });

  test("a failed lookup is an error naming the DNS code", async () => {
    const dns = fakeDns({ "2.0.0.127.bl.example.test": ["127.0.0.2"] }, {}, ["2.100.51.198.bl.example.test"]);
    const [first] = await checkBlocklists({ ips: ["198.51.100.2"], domains: [] }, [zone], dns);
    assert.deepEqual(first, {
      zone: "bl.example.test",
      kind: "ip",
      target: "198.51.100.2",
      status: "error",
      codes: [],
      reason: "lookup failed: ETIMEOUT",
    });
  });

  test("the Spamhaus delisting page is named for a ZEN listing", async () => {
    const zen = blocklistZone("zen.spamhaus.org", "ip");
    const dns = fakeDns({ "2.0.0.127.zen.spamhaus.org": ["127.0.0.2"], "2.100.51.198.zen.spamhaus.org": ["127.0.0.4"] });
    const [r] = await checkBlocklists({ ips: ["198.51.100.2"], domains: [] }, [zen], dns);
    assert.equal(r.delistUrl, "https://www.spamhaus.org/query/ip/198.51.100.2");
  });
});
