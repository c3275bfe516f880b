// The outbound DNS cache (server-bootstrap/maild/outbound/dns-cache.ts): how long an answer is
// kept, what is never kept, and the lookups built on it, with the error codes of Node's resolver.
// The stub client under it is scripted here (its wire format: outbound-dns-ad.test.ts).
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { cacheSeconds, createCachingDns, ipv6Text } from "../../server-bootstrap/maild/outbound/dns-cache";
import { RCODE, RRTYPE, type DnsAnswer, type DnsRecord } from "../../server-bootstrap/maild/outbound/dns-ad";
import { dnsFailure } from "../../server-bootstrap/maild/outbound/mx";

function rec(name: string, type: number, ttl: number, data: Buffer, extra: Partial<DnsRecord> = {}): DnsRecord {
  return { name, type, ttl, data, ...extra };
}
const mx = (ttl: number, pref: number, exchange: string) =>
  rec("example.org", RRTYPE.MX, ttl, Buffer.from([pref >> 8, pref & 0xff]), { exchange });
const answer = (partial: Partial<DnsAnswer>): DnsAnswer => ({
  rcode: RCODE.NOERROR,
  authenticated: false,
  truncated: false,
  answers: [],
  ...partial,
});

/** A scripted stub: answers by "TYPE name", counting the questions it gets. */
function stub(answers: Record<string, DnsAnswer | Error>) {
  const clock = { t: 1_000_000 };
  const asked: string[] = [];
  const dns = createCachingDns(
    async (name, type) => {
      asked.push(`${type} ${name}`);
      const a = answers[`${type} ${name}`];
      if (a === undefined) throw new Error(`unscripted ${type} ${name}`);
      if (a instanceof Error) throw a;
      return a;
    },
    () => clock.t,
  );
  return { dns, clock, asked };
}

describe("outbound DNS cache: how long", () => {
  test("an answer is kept for the lowest TTL of its records (a CNAME's too), then asked again", async () => {
    const { dns, clock, asked } = stub({
      [`${RRTYPE.MX} example.org`]: answer({
        answers: [rec("example.org", RRTYPE.CNAME, 120, Buffer.alloc(0)), mx(300, 10, "mx.example.org")],
      }),
    });
    await dns.query("example.org", RRTYPE.MX);
    clock.t += 119_999;
    await dns.query("Example.ORG.", RRTYPE.MX);
    assert.equal(asked.length, 1, "within the TTL (the name's case and final dot do not matter)");
    clock.t += 1;
    await dns.query("example.org", RRTYPE.MX);
    assert.equal(asked.length, 2, "the CNAME's 120 s ran out");
  });

  test("NXDOMAIN and NODATA are kept for their negative TTL (from the SOA), and not without one", () => {
    assert.equal(cacheSeconds(answer({ rcode: RCODE.NXDOMAIN, negativeTtl: 300 }), RRTYPE.TXT), 300);
    assert.equal(cacheSeconds(answer({ negativeTtl: 60 }), RRTYPE.TXT), 60, "NOERROR without TXT records");
    assert.equal(
      cacheSeconds(answer({ answers: [rec("x.example", RRTYPE.CNAME, 900, Buffer.alloc(0))], negativeTtl: 60 }), RRTYPE.TXT),
      60,
    );
    assert.equal(cacheSeconds(answer({ rcode: RCODE.NXDOMAIN }), RRTYPE.TXT), 0);
  });

  test("SERVFAIL, REFUSED, a truncated answer and a TTL of 0 are not kept; longer TTLs are cut to 3600 s", () => {
    assert.equal(cacheSeconds(answer({ rcode: RCODE.SERVFAIL, negativeTtl: 300 }), RRTYPE.MX), 0);
    assert.equal(cacheSeconds(answer({ rcode: RCODE.REFUSED }), RRTYPE.MX), 0);
    assert.equal(cacheSeconds(answer({ truncated: true, answers: [mx(300, 10, "mx.example.org")] }), RRTYPE.MX), 0);
    assert.equal(cacheSeconds(answer({ answers: [mx(0, 10, "mx.example.org")] }), RRTYPE.MX), 0);
    assert.equal(cacheSeconds(answer({ answers: [mx(86400, 10, "mx.example.org")] }), RRTYPE.MX), 3600);
  });

  test("a failed query is not kept, and questions asked while one is under way share it", async () => {
    let release: (a: DnsAnswer) => void = () => undefined;
    let calls = 0;
    const dns = createCachingDns(async () => {
      calls++;
      if (calls === 1) throw new Error("DNS query example.org/15 to 198.51.100.2: no answer in 5000 ms");
      return new Promise<DnsAnswer>((r) => (release = r));
    });
    await assert.rejects(dns.query("example.org", RRTYPE.MX), /no answer/);
    const both = Promise.all([dns.query("example.org", RRTYPE.MX), dns.query("example.org", RRTYPE.MX)]);
    release(answer({ answers: [mx(300, 10, "mx.example.org")] }));
    const [a, b] = await both;
    assert.equal(a, b);
    assert.equal(calls, 2, "the failure was asked again; the two questions after it were one query");
    assert.equal(dns.size, 1);
  });
});

describe("outbound DNS cache: lookups", () => {
  const { dns } = stub({
    [`${RRTYPE.MX} example.org`]: answer({ answers: [mx(300, 20, "mx2.example.org"), mx(300, 10, "mx1.example.org")] }),
    [`${RRTYPE.A} mx1.example.org`]: answer({ answers: [rec("mx1.example.org", RRTYPE.A, 300, Buffer.from([198, 51, 100, 25]))] }),
    [`${RRTYPE.AAAA} mx1.example.org`]: answer({
      answers: [rec("mx1.example.org", RRTYPE.AAAA, 300, Buffer.from("20010db8000100000000000000000025", "hex"))],
    }),
    [`${RRTYPE.TXT} _mta-sts.example.org`]: answer({
      answers: [
        rec("_mta-sts.example.org", RRTYPE.TXT, 300, Buffer.from([8, ...Buffer.from("v=STSv1;"), 12, ...Buffer.from(" id=20250101")])),
      ],
    }),
    [`${RRTYPE.MX} gone.example`]: answer({ rcode: RCODE.NXDOMAIN, negativeTtl: 300 }),
    [`${RRTYPE.MX} nomx.example`]: answer({ negativeTtl: 300 }),
    [`${RRTYPE.MX} broken.example`]: answer({ rcode: RCODE.SERVFAIL }),
  });

  test("MX, A, AAAA and TXT come out as Node's resolver gives them", async () => {
    assert.deepEqual(await dns.lookup.resolveMx("example.org"), [
      { priority: 20, exchange: "mx2.example.org" },
      { priority: 10, exchange: "mx1.example.org" },
    ]);
    assert.deepEqual(await dns.lookup.resolve4("mx1.example.org"), ["198.51.100.25"]);
    assert.deepEqual(await dns.lookup.resolve6("mx1.example.org"), ["2001:db8:1::25"]);
    assert.deepEqual(await dns.lookup.resolveTxt("_mta-sts.example.org"), [["v=STSv1;", " id=20250101"]]);
  });

  test("NXDOMAIN is ENOTFOUND, no records of the type ENODATA, SERVFAIL ESERVFAIL: read by mx.ts as nxdomain, nodata, temporary", async () => {
    const failure = async (name: string) => {
      try {
        await dns.lookup.resolveMx(name);
      } catch (err) {
        return [(err as NodeJS.ErrnoException).code, dnsFailure(err)];
      }
      return "resolved";
    };
    assert.deepEqual(await failure("gone.example"), ["ENOTFOUND", "nxdomain"]);
    assert.deepEqual(await failure("nomx.example"), ["ENODATA", "nodata"]);
    assert.deepEqual(await failure("broken.example"), ["ESERVFAIL", "temporary"]);
  });

  test("IPv6 addresses in RFC 5952 text", () => {
    const text = (hex: string) => ipv6Text(Buffer.from(hex, "hex"));
    assert.equal(text("00000000000000000000000000000001"), "::1");
    assert.equal(text("00000000000000000000000000000000"), "::");
    assert.equal(text("20010db8000000000001000000000001"), "2001:db8::1:0:0:1", "the first of two equal runs");
    assert.equal(text("20010db8000000010000000000000001"), "2001:db8:0:1::1", "the longest run");
    assert.equal(text("20010db8000000010001000100010001"), "2001:db8:0:1:1:1:1:1", "a single zero group stays");
    assert.equal(text("fe800000000000000000000000000000"), "fe80::");
  });
});
