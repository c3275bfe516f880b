import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { dnsFailure, findRoute, hostAddresses, orderMx, type DnsLookup } from "../../server-bootstrap/maild/outbound/mx";

type Answer<T> = T | "nxdomain" | "nodata" | "servfail";

function dnsError(kind: "nxdomain" | "nodata" | "servfail"): Error {
  const code = { nxdomain: "ENOTFOUND", nodata: "ENODATA", servfail: "ESERVFAIL" }[kind];
  return Object.assign(new Error(`queryX ${code}`), { code });
}

/** A resolver from a table: name -> type -> records or an error kind; anything else is NXDOMAIN. */
function fakeDns(
  zone: Record<string, { mx?: Answer<{ exchange: string; priority: number }[]>; a?: Answer<string[]>; aaaa?: Answer<string[]> }>,
): DnsLookup & { asked: string[] } {
  const asked: string[] = [];
  const answer = <T>(name: string, type: "mx" | "a" | "aaaa"): Promise<T> => {
    asked.push(`${name}/${type}`);
    const node = zone[name];
    if (!node) return Promise.reject(dnsError("nxdomain"));
    const v = node[type];
    if (v === undefined) return Promise.reject(dnsError("nodata"));
    if (typeof v === "string") return Promise.reject(dnsError(v));
    return Promise.resolve(v as T);
  };
  return {
    asked,
    resolveMx: (n) => answer(n, "mx"),
    resolve4: (n) => answer(n, "a"),
    resolve6: (n) => answer(n, "aaaa"),
    resolveTxt: () => Promise.reject(dnsError("nodata")),
  };
}

/** A deterministic sequence for the shuffle. */
function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length];
}

describe("MX ordering (RFC 5321 5.1)", () => {
  test("hosts are tried by ascending preference", () => {
    const hosts = orderMx([
      { exchange: "c.example", priority: 30 },
      { exchange: "a.example", priority: 10 },
      { exchange: "b.example", priority: 20 },
    ]);
    assert.deepEqual(
      hosts.map((h) => h.name),
      ["a.example", "b.example", "c.example"],
    );
  });

  test("equal preferences are shuffled: both orders occur", () => {
    const records = [
      { exchange: "x.example", priority: 10 },
      { exchange: "y.example", priority: 10 },
      { exchange: "z.example", priority: 20 },
    ];
    assert.deepEqual(
      orderMx(records, sequence(0.99)).map((h) => h.name),
      ["x.example", "y.example", "z.example"],
    );
    assert.deepEqual(
      orderMx(records, sequence(0)).map((h) => h.name),
      ["y.example", "x.example", "z.example"],
    );
  });

  test("names are lowercased without trailing dot; duplicates, IP literals and a stray null MX are dropped", () => {
    const hosts = orderMx([
      { exchange: "MX1.Example.ORG.", priority: 10 },
      { exchange: "mx1.example.org", priority: 20 },
      { exchange: "198.51.100.7", priority: 5 },
      { exchange: "", priority: 0 },
    ]);
    assert.deepEqual(hosts, [{ name: "mx1.example.org", preference: 10, implicit: false }]);
  });
});

describe("route for a recipient domain", () => {
  test("MX records give the hosts in order", async () => {
    const dns = fakeDns({
      "example.org": {
        mx: [
          { exchange: "mx2.example.org", priority: 20 },
          { exchange: "mx1.example.org", priority: 10 },
        ],
      },
    });
    assert.deepEqual(await findRoute(dns, "example.org", "mail.us.example"), {
      kind: "hosts",
      hosts: [
        { name: "mx1.example.org", preference: 10, implicit: false },
        { name: "mx2.example.org", preference: 20, implicit: false },
      ],
    });
  });

  test("no MX records (NODATA) but an address: the domain itself is the implicit MX", async () => {
    const dns = fakeDns({ "example.org": { aaaa: ["2001:db8::25"] } });
    assert.deepEqual(await findRoute(dns, "example.org", "mail.us.example"), {
      kind: "hosts",
      hosts: [{ name: "example.org", preference: 0, implicit: true }],
    });
  });

  test("no MX and no address records: no mail host (permanent)", async () => {
    const dns = fakeDns({ "example.org": {} });
    assert.deepEqual(await findRoute(dns, "example.org", "mail.us.example"), { kind: "no-mail-host" });
  });

  test("a domain that does not exist is nxdomain", async () => {
    assert.deepEqual(await findRoute(fakeDns({}), "nowhere.example", "mail.us.example"), { kind: "nxdomain" });
  });

  test("a single MX '.' with preference 0 is a null MX (RFC 7505)", async () => {
    const dns = fakeDns({ "example.org": { mx: [{ exchange: "", priority: 0 }], a: ["198.51.100.1"] } });
    assert.deepEqual(await findRoute(dns, "example.org", "mail.us.example"), { kind: "null-mx" });
  });

  test("a temporary failure of the MX lookup defers", async () => {
    const dns = fakeDns({ "example.org": { mx: "servfail" } });
    assert.equal((await findRoute(dns, "example.org", "mail.us.example")).kind, "temporary");
  });

  test("a temporary failure of the implicit-MX address lookup defers", async () => {
    const dns = fakeDns({ "example.org": { a: "servfail", aaaa: ["2001:db8::1"] } });
    assert.equal((await findRoute(dns, "example.org", "mail.us.example")).kind, "temporary");
  });

  test("our own name among the MX hosts drops it and every less preferred host", async () => {
    const dns = fakeDns({
      "example.org": {
        mx: [
          { exchange: "primary.example.org", priority: 10 },
          { exchange: "mail.us.example", priority: 20 },
          { exchange: "backup.example.org", priority: 30 },
        ],
      },
    });
    assert.deepEqual(await findRoute(dns, "example.org", "mail.us.example"), {
      kind: "hosts",
      hosts: [{ name: "primary.example.org", preference: 10, implicit: false }],
    });
  });

  test("our own name as the best MX is a loop", async () => {
    const dns = fakeDns({
      "example.org": {
        mx: [
          { exchange: "mail.us.example", priority: 10 },
          { exchange: "other.example.org", priority: 10 },
        ],
      },
    });
    assert.deepEqual(await findRoute(dns, "example.org", "Mail.Us.Example"), { kind: "loop" });
  });
});

describe("addresses of an MX host", () => {
  test("IPv6 addresses come before IPv4", async () => {
    const dns = fakeDns({ "mx.example.org": { a: ["198.51.100.1", "198.51.100.2"], aaaa: ["2001:db8::1"] } });
    assert.deepEqual(await hostAddresses(dns, "mx.example.org", { ipv6: true, ipv4: true }), [
      "2001:db8::1",
      "198.51.100.1",
      "198.51.100.2",
    ]);
  });

  test("a disabled family is neither asked nor used", async () => {
    const dns = fakeDns({ "mx.example.org": { a: ["198.51.100.1"], aaaa: ["2001:db8::1"] } });
    assert.deepEqual(await hostAddresses(dns, "mx.example.org", { ipv6: false, ipv4: true }), ["198.51.100.1"]);
    assert.deepEqual(dns.asked, ["mx.example.org/a"]);
  });

  test("a temporary failure of one family still gives the other family's addresses", async () => {
    const dns = fakeDns({ "mx.example.org": { a: ["198.51.100.1"], aaaa: "servfail" } });
    assert.deepEqual(await hostAddresses(dns, "mx.example.org", { ipv6: true, ipv4: true }), ["198.51.100.1"]);
  });

  test("no address and a temporary failure is temporary; no address at all is an empty list", async () => {
    assert.equal(
      await hostAddresses(fakeDns({ "mx.example.org": { a: "servfail" } }), "mx.example.org", { ipv6: true, ipv4: true }),
      "temporary",
    );
    assert.deepEqual(await hostAddresses(fakeDns({}), "mx.example.org", { ipv6: true, ipv4: true }), []);
  });

  test("c-ares error codes map to nxdomain, nodata and temporary", () => {
    assert.equal(dnsFailure({ code: "ENOTFOUND" }), "nxdomain");
    assert.equal(dnsFailure({ code: "ENODATA" }), "nodata");
    for (const code of ["ESERVFAIL", "ETIMEOUT", "ECONNREFUSED", "EREFUSED", undefined]) assert.equal(dnsFailure({ code }), "temporary");
  });
});
