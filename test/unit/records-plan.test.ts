import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { assertUniqueKeys, planDomainRecords, planHostRecords, planPtr } from "../../components/records/plan";
import { placeholderDkimKeys, placeholderHostFacts } from "../../components/records/placeholders";
import { dkimPublicKeyFromPem } from "../../components/records/dkim";
import { parseTxtContent } from "../../components/records/txt";
import type { AcmeSpec, DomainSpec } from "../../components/spec";
import type { DkimPublicKey, HostFacts, PlannedRecord } from "../../components/records/types";
import { ACME_SPEC, domainSpec as fixtureDomainSpec } from "../fixtures/stack-spec";

function domainSpec(name: string, overrides: Partial<DomainSpec> = {}): DomainSpec {
  return fixtureDomainSpec(name, { zone: "example.org", ...overrides });
}

const acme: AcmeSpec = ACME_SPEC;

function realDkim(domain: DomainSpec): DkimPublicKey[] {
  return domain.dkim.generations.flatMap((g) => {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "pem" }) as string;
    const ed = generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "pem" }) as string;
    return [
      { selector: `${g}-rsa`, algorithm: "rsa" as const, publicKeyB64: dkimPublicKeyFromPem(rsa, "rsa") },
      { selector: `${g}-ed25519`, algorithm: "ed25519" as const, publicKeyB64: dkimPublicKeyFromPem(ed, "ed25519") },
    ];
  });
}

const factsA: HostFacts = {
  hostname: "mail.example.org",
  ipv4: "198.51.100.25",
  ipv6: "2001:db8:1::1",
  tlsSpkiSha256: "a".repeat(64),
  acmeAccountUri: "https://acme.example/acct/1",
};
const factsB: HostFacts = {
  hostname: "mail.example.org",
  ipv4: "198.51.100.99",
  ipv6: "2001:DB8:1:0:0:0:0:2",
  tlsSpkiSha256: "b".repeat(64),
  acmeAccountUri: "https://acme.example/acct/2",
};

const shape = (rs: PlannedRecord[]) =>
  rs.map((r) => ({ key: r.key, name: r.name, type: r.type, hasPriority: r.priority !== undefined, hasData: r.data !== undefined }));
const byKey = (rs: PlannedRecord[], key: string) => {
  const r = rs.find((x) => x.key === key);
  assert.ok(r, `no record ${key}`);
  return r;
};

describe("planHostRecords", () => {
  test("without a TLS key: A, AAAA and the HELO SPF at the hostname", () => {
    const { tlsSpkiSha256: _unused, ...facts } = factsA;
    assert.deepEqual(
      planHostRecords(facts).map((r) => r.key),
      ["A mail.example.org", "AAAA mail.example.org", "TXT mail.example.org spf"],
    );
  });

  test("with a TLS key: also TLSA 3 1 1 at _25._tcp", () => {
    const tlsa = byKey(planHostRecords(factsA), "TLSA _25._tcp.mail.example.org");
    assert.equal(tlsa.content, `3 1 1 ${"A".repeat(64)}`);
    assert.deepEqual(tlsa.data, { usage: 3, selector: 1, matchingType: 1, certificate: "A".repeat(64) });
  });

  test("A/AAAA content is canonical and the HELO SPF names both addresses", () => {
    const rs = planHostRecords(factsB);
    assert.equal(byKey(rs, "A mail.example.org").content, "198.51.100.99");
    assert.equal(byKey(rs, "AAAA mail.example.org").content, "2001:db8:1::2");
    assert.equal(byKey(rs, "TXT mail.example.org spf").content, '"v=spf1 ip4:198.51.100.99 ip6:2001:db8:1::2 -all"');
  });

  test("the hostname is lowercased and loses a trailing dot", () => {
    const rs = planHostRecords({ ...factsA, hostname: "Mail.Example.ORG." });
    assert.deepEqual([...new Set(rs.map((r) => r.name))], ["mail.example.org", "_25._tcp.mail.example.org"]);
  });
});

describe("planDomainRecords", () => {
  const domain = domainSpec("example.org");
  const dkim = realDkim(domain);
  const records = planDomainRecords(domain, factsA, dkim, acme);

  test("plans exactly the expected record set", () => {
    assert.deepEqual(
      records.map((r) => r.key),
      [
        "MX example.org",
        "TXT example.org spf",
        "TXT s1-rsa._domainkey.example.org",
        "TXT s1-ed25519._domainkey.example.org",
        "TXT _dmarc.example.org",
        "TXT _mta-sts.example.org",
        "A mta-sts.example.org",
        "AAAA mta-sts.example.org",
        "TXT _smtp._tls.example.org",
        "CAA example.org issue",
        "CAA example.org issuewild",
        "SRV _submissions._tcp.example.org",
        "SRV _submission._tcp.example.org",
        "SRV _imaps._tcp.example.org",
        "SRV _imap._tcp.example.org",
        "SRV _pop3s._tcp.example.org",
        "SRV _pop3._tcp.example.org",
        "SRV _autodiscover._tcp.example.org",
        "A autoconfig.example.org",
        "AAAA autoconfig.example.org",
        "A autodiscover.example.org",
        "AAAA autodiscover.example.org",
      ],
    );
  });

  test("MX points at the hostname without trailing dot, priority 10", () => {
    const mx = byKey(records, "MX example.org");
    assert.equal(mx.content, "mail.example.org");
    assert.equal(mx.priority, 10);
  });

  test("SPF lists the server's addresses and ends -all", () => {
    assert.equal(parseTxtContent(byKey(records, "TXT example.org spf").content), "v=spf1 ip4:198.51.100.25 ip6:2001:db8:1::1 -all");
  });

  test("DKIM TXT carries each key's p=", () => {
    for (const key of dkim) {
      const txt = parseTxtContent(byKey(records, `TXT ${key.selector}._domainkey.example.org`).content);
      assert.equal(txt, `v=DKIM1; k=${key.algorithm}; p=${key.publicKeyB64}`);
    }
  });

  test("CAA carries accounturi when the account is known, under the same key", () => {
    const without = planDomainRecords(domain, { ...factsA, acmeAccountUri: undefined }, dkim, acme);
    const a = byKey(records, "CAA example.org issue");
    const b = byKey(without, "CAA example.org issue");
    assert.equal(a.content, '0 issue "letsencrypt.org; accounturi=https://acme.example/acct/1; validationmethods=dns-01,http-01"');
    assert.equal(b.content, '0 issue "letsencrypt.org; validationmethods=dns-01,http-01"');
    assert.deepEqual(a.data, {
      flags: 0,
      tag: "issue",
      value: "letsencrypt.org; accounturi=https://acme.example/acct/1; validationmethods=dns-01,http-01",
    });
  });

  test("SRV records carry Cloudflare's content, data and a priority equal to data.priority", () => {
    const srv = byKey(records, "SRV _submission._tcp.example.org");
    assert.equal(srv.content, "1 587 mail.example.org");
    assert.deepEqual(srv.data, { priority: 10, weight: 1, port: 587, target: "mail.example.org" });
    assert.equal(srv.priority, 10);
  });

  test('POP3 is published as not offered: data target "." as Cloudflare accepts and returns it, content `0 0 .`', () => {
    for (const service of ["_pop3._tcp", "_pop3s._tcp"]) {
      const srv = byKey(records, `SRV ${service}.example.org`);
      assert.deepEqual(srv.data, { priority: 0, weight: 0, port: 0, target: "." });
      assert.equal(srv.priority, 0);
      assert.equal(srv.content, "0 0 .");
    }
  });

  test('CAA data is what Cloudflare accepts and stores: flags the number 0, issuewild ";", content `0 issuewild ";"`', () => {
    const wild = byKey(records, "CAA example.org issuewild");
    assert.deepEqual(wild.data, { flags: 0, tag: "issuewild", value: ";" });
    assert.equal(typeof (wild.data as { flags: unknown }).flags, "number");
    assert.equal(wild.content, '0 issuewild ";"');
  });

  test("caa: false plans no CAA; an empty tlsrpt.rua plans no TLSRPT", () => {
    const keys = planDomainRecords(domainSpec("example.org", { caa: false, tlsrpt: { rua: [] } }), factsA, dkim, acme).map((r) => r.key);
    assert.ok(!keys.some((k) => k.startsWith("CAA ") || k.includes("_smtp._tls")));
  });

  test("two DKIM generations publish four selectors", () => {
    const d = domainSpec("example.org", { dkim: { generations: ["s2", "s1"] } });
    const keys = planDomainRecords(d, factsA, placeholderDkimKeys(d), acme)
      .map((r) => r.key)
      .filter((k) => k.includes("_domainkey"));
    assert.deepEqual(keys, [
      "TXT s2-rsa._domainkey.example.org",
      "TXT s2-ed25519._domainkey.example.org",
      "TXT s1-rsa._domainkey.example.org",
      "TXT s1-ed25519._domainkey.example.org",
    ]);
  });

  test("a missing DKIM key is an error naming the selector", () => {
    assert.throws(() => planDomainRecords(domain, factsA, dkim.slice(1), acme), /example\.org: no DKIM public key for selector "s1-rsa"/);
  });

  test("a DKIM key for a selector the spec does not publish is an error", () => {
    const extra = [...dkim, { ...dkim[0], selector: "old-rsa" }];
    assert.throws(
      () => planDomainRecords(domain, factsA, extra, acme),
      /selector "old-rsa" matches no generation in dkim\.generations \(s1\)/,
    );
  });

  test("a DKIM key of the wrong algorithm is an error", () => {
    const swapped = [
      { ...dkim[1], selector: "s1-rsa" },
      { ...dkim[0], selector: "s1-ed25519" },
    ];
    assert.throws(() => planDomainRecords(domain, factsA, swapped, acme), /selector "s1-rsa" needs an rsa key, got ed25519/);
  });
});

describe("planner invariants", () => {
  const domain = domainSpec("example.org", { dkim: { generations: ["s2", "s1"] } });
  const planAll = (facts: HostFacts, dkim: DkimPublicKey[]) => [...planHostRecords(facts), ...planDomainRecords(domain, facts, dkim, acme)];

  test("the record set (keys, names, types) does not depend on fact values", () => {
    const a = planAll(factsA, realDkim(domain));
    const b = planAll(factsB, realDkim(domain));
    assert.deepEqual(shape(a), shape(b));
    assert.notDeepEqual(
      a.map((r) => r.content),
      b.map((r) => r.content),
    );
  });

  test("placeholders produce the same record set as real values", () => {
    const placeholder = planAll(
      placeholderHostFacts("mail.example.org", { tlsSpkiSha256: true, acmeAccountUri: true }),
      placeholderDkimKeys(domain),
    );
    assert.deepEqual(shape(placeholder), shape(planAll(factsA, realDkim(domain))));
  });

  test("placeholders without optional facts match real facts without them", () => {
    const { tlsSpkiSha256: _t, acmeAccountUri: _a, ...bare } = factsA;
    const placeholder = planAll(placeholderHostFacts("mail.example.org"), placeholderDkimKeys(domain));
    assert.deepEqual(shape(placeholder), shape(planAll(bare, realDkim(domain))));
  });

  test("keys are unique across host records and two domains sharing one zone", () => {
    const other = domainSpec("lists.example.org");
    const all = [...planAll(factsA, realDkim(domain)), ...planDomainRecords(other, factsA, placeholderDkimKeys(other), acme)];
    assert.doesNotThrow(() => assertUniqueKeys(all, "zone example.org"));
    assert.equal(new Set(all.map((r) => r.key)).size, all.length);
  });

  test("no key contains any part of a record's content", () => {
    for (const r of planAll(factsA, realDkim(domain))) {
      for (const value of [factsA.ipv4, factsA.ipv6, factsA.tlsSpkiSha256!, factsA.acmeAccountUri!, "v=", "p="]) {
        assert.ok(!r.key.includes(value), `${r.key} contains ${value}`);
      }
    }
  });

  test("two runs give identical records", () => {
    const dkim = realDkim(domain);
    assert.deepEqual(planAll(factsA, dkim), planAll(factsA, dkim));
  });

  test("names are lowercase FQDNs without trailing dot, ttl is auto (1) everywhere", () => {
    for (const r of planAll(factsA, realDkim(domain))) {
      assert.match(r.name, /^([a-z0-9_-]+\.)+[a-z0-9-]+$/, r.name);
      assert.equal(r.ttl, 1, r.key);
    }
  });

  test("every comment cites its source and fits Cloudflare's 100 characters", () => {
    for (const r of planAll(factsA, realDkim(domain))) {
      assert.match(r.comment, /RFC \d+|MS-OXDSCLI|draft-ietf-/, r.key);
      assert.ok(r.comment.length <= 100, `${r.key}: ${r.comment.length} characters`);
    }
  });

  test("a mail hostname that is also a per-domain host collides and is reported", () => {
    const facts = { ...factsA, hostname: "mta-sts.example.org" };
    assert.throws(
      () =>
        assertUniqueKeys(
          [...planHostRecords(facts), ...planDomainRecords(domain, facts, placeholderDkimKeys(domain), acme)],
          "zone example.org",
        ),
      /zone example\.org: two records are planned as "A mta-sts\.example\.org"/,
    );
  });
});

describe("planPtr", () => {
  test("both addresses, canonical, point at the hostname", () => {
    assert.deepEqual(planPtr(factsB), [
      { address: "198.51.100.99", ptr: "mail.example.org" },
      { address: "2001:db8:1::2", ptr: "mail.example.org" },
    ]);
  });
});
