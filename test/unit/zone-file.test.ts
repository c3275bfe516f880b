import { test, describe, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { renderZone, type ZoneOptions } from "../../components/records/zone-file";
import { planDomainRecords, planHostRecords } from "../../components/records/plan";
import { dkimPublicKeyFromPem, dkimSelectors } from "../../components/records/dkim";
import { spkiSha256FromPem } from "../../components/records/tlsa";
import type { AcmeSpec, DomainSpec } from "../../components/spec";
import type { DkimPublicKey, HostFacts, PlannedRecord } from "../../components/records/types";
import { ACME_SPEC, domainSpec as fixtureDomainSpec } from "../fixtures/stack-spec";

function domainSpec(name: string, zone: string, generations = ["s1"]): DomainSpec {
  return fixtureDomainSpec(name, {
    zone,
    dmarc: {
      policy: "reject",
      subdomainPolicy: "reject",
      rua: [`dmarc@${name}`],
      ruf: [`forensic@${name}`],
      adkim: "r",
      aspf: "s",
      pct: 50,
    },
    spf: { ip4: ["203.0.113.0/24"], ip6: ["2001:db8:2::/48"], include: [{ domain: "_spf.example.com", lookups: 1 }], all: "-all" },
    tlsrpt: { rua: [`mailto:tls@${name}`, "https://reports.example.com/tlsrpt"] },
    dkim: { generations },
  });
}

const acme: AcmeSpec = ACME_SPEC;
const facts: HostFacts = {
  hostname: "mail.example.org",
  ipv4: "198.51.100.25",
  ipv6: "2001:db8:1::1",
  tlsSpkiSha256: spkiSha256FromPem(
    generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "pem" }) as string,
  ),
  acmeAccountUri: "https://acme-v02.api.letsencrypt.org/acme/acct/123456789",
};

function dkimKeys(domain: DomainSpec): DkimPublicKey[] {
  return domain.dkim.generations.flatMap((g) => {
    const s = dkimSelectors(g);
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "pem" }) as string;
    const ed = generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "pem" }) as string;
    return [
      { selector: s.rsa, algorithm: "rsa" as const, publicKeyB64: dkimPublicKeyFromPem(rsa, "rsa") },
      { selector: s.ed25519, algorithm: "ed25519" as const, publicKeyB64: dkimPublicKeyFromPem(ed, "ed25519") },
    ];
  });
}

const opts: ZoneOptions = { nameservers: ["ns1.example.net", "ns2.example.net"], hostmaster: "hostmaster@example.org", serial: 2025010101 };

const orgDomain = domainSpec("example.org", "example.org", ["s2", "s1"]);
const orgZone = [...planHostRecords(facts), ...planDomainRecords(orgDomain, facts, dkimKeys(orgDomain), acme)];
const netDomains = [domainSpec("example.net", "example.net"), domainSpec("lists.example.net", "example.net")];
const netZone = netDomains.flatMap((d) => planDomainRecords(d, facts, dkimKeys(d), acme));

const dir = mkdtempSync(join(tmpdir(), "zonefile-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** named-checkzone with every check that needs no network: `-i local` never resolves out-of-zone names. */
function namedCheckzone(origin: string, text: string, extra: string[] = []) {
  const file = join(dir, `${origin}.zone`);
  writeFileSync(file, text);
  const run = spawnSync(
    "named-checkzone",
    ["-i", "local", "-k", "fail", "-m", "fail", "-M", "fail", "-n", "fail", "-S", "fail", "-r", "fail", ...extra, origin, file],
    { encoding: "utf8" },
  );
  if (run.error) {
    assert.fail(`named-checkzone could not run (${run.error.message}): install Debian's bind9-utils (apt-get install bind9-utils)`);
  }
  return run;
}

describe("renderZone", () => {
  const text = renderZone("example.org", orgZone, opts);
  const lines = text.split("\n");

  test("starts with $ORIGIN, $TTL, SOA and the NS records", () => {
    assert.deepEqual(lines.slice(0, 5), [
      "$ORIGIN example.org.",
      "$TTL 300",
      "example.org. 300 IN SOA ns1.example.net. hostmaster.example.org. 2025010101 7200 3600 1209600 300",
      "example.org. 300 IN NS ns1.example.net.",
      "example.org. 300 IN NS ns2.example.net.",
    ]);
  });

  test("writes one line per record with an absolute owner name", () => {
    const body = lines.slice(5).filter((l) => l !== "");
    assert.equal(body.length, orgZone.length);
    assert.ok(
      body.every((l) => /^[a-z0-9_.-]+\. 300 IN /.test(l)),
      body.find((l) => !/^[a-z0-9_.-]+\. 300 IN /.test(l)),
    );
  });

  test("MX, SRV, CAA and TLSA in presentation form; TXT as planned", () => {
    const tlsa = `_25._tcp.mail.example.org. 300 IN TLSA 3 1 1 ${facts.tlsSpkiSha256!.toUpperCase()}`;
    const spf = orgZone.find((r) => r.key === "TXT example.org spf")!.content;
    for (const expected of [
      "example.org. 300 IN MX 10 mail.example.org. ;",
      "_submissions._tcp.example.org. 300 IN SRV 0 1 465 mail.example.org. ;",
      "_pop3._tcp.example.org. 300 IN SRV 0 0 0 . ;",
      `example.org. 300 IN CAA 0 issue "letsencrypt.org; accounturi=${facts.acmeAccountUri}; validationmethods=dns-01,http-01" ;`,
      'example.org. 300 IN CAA 0 issuewild ";" ;',
      `${tlsa} ;`,
      `example.org. 300 IN TXT ${spf} ;`,
    ]) {
      assert.ok(
        lines.some((l) => l.startsWith(expected)),
        `missing: ${expected}`,
      );
    }
  });

  test("the order does not depend on the order of the input", () => {
    const reversed = [...orgZone].reverse();
    assert.equal(renderZone("example.org", reversed, opts), text);
  });

  test("apex records come first, then names sorted by their labels right to left", () => {
    const owners = lines
      .slice(5)
      .filter((l) => l !== "")
      .map((l) => l.split(" ")[0]);
    assert.equal(owners[0], "example.org.");
    assert.ok(owners.indexOf("_25._tcp.mail.example.org.") > owners.indexOf("mail.example.org."));
  });

  test("a mailbox hostmaster with a dot in its local part is escaped (RFC 1035 8)", () => {
    assert.match(
      renderZone("example.org", [], { ...opts, hostmaster: "dns.admin@example.org" }),
      / SOA ns1\.example\.net\. dns\\\.admin\.example\.org\. /,
    );
  });

  test("records planned with ttl 1 (auto) take the zone's ttl option", () => {
    assert.match(renderZone("example.org", orgZone, { ...opts, ttl: 3600 }), /^example\.org\. 3600 IN MX 10 mail\.example\.org\./m);
  });

  const bad: { name: string; zone: string; records: PlannedRecord[]; o: ZoneOptions; message: RegExp }[] = [
    {
      name: "a record outside the zone",
      zone: "example.net",
      records: orgZone,
      o: opts,
      message: /zone example\.net: record "A mail\.example\.org" is named mail\.example\.org, which is outside the zone/,
    },
    {
      name: "a duplicate key",
      zone: "example.org",
      records: [orgZone[0], orgZone[0]],
      o: opts,
      message: /record "A mail\.example\.org" appears twice/,
    },
    {
      name: "a name server inside the zone without addresses",
      zone: "example.org",
      records: orgZone,
      o: { ...opts, nameservers: ["ns1.example.org"] },
      message: /name server ns1\.example\.org is inside the zone but has no A\/AAAA record/,
    },
    {
      name: "a serial beyond 32 bits",
      zone: "example.org",
      records: orgZone,
      o: { ...opts, serial: 2 ** 32 },
      message: /serial 4294967296 is not an integer 0\.\.4294967295/,
    },
    {
      name: "no name servers",
      zone: "example.org",
      records: orgZone,
      o: { ...opts, nameservers: [] },
      message: /at least one name server/,
    },
  ];
  for (const c of bad) {
    test(`refuses ${c.name}`, () => {
      assert.throws(() => renderZone(c.zone, c.records, c.o), c.message);
    });
  }
});

describe("named-checkzone accepts rendered zones", () => {
  const zones: [string, string, PlannedRecord[], ZoneOptions][] = [
    ["the mail host's zone with one domain, TLSA and two DKIM generations", "example.org", orgZone, opts],
    [
      "a zone holding two domains without the host records",
      "example.net",
      netZone,
      { ...opts, nameservers: ["ns1.example.com", "ns2.example.com"] },
    ],
    ["a zone whose in-zone name server has its own addresses", "example.org", orgZone, { ...opts, nameservers: ["mail.example.org"] }],
  ];
  for (const [name, origin, records, o] of zones) {
    test(name, () => {
      const run = namedCheckzone(origin, renderZone(origin, records, o));
      assert.equal(run.status, 0, `${run.stdout}${run.stderr}`);
      assert.match(run.stdout, /OK/);
    });
  }

  test("the loaded zone holds every planned record with the same data", () => {
    const run = namedCheckzone("example.org", renderZone("example.org", orgZone, opts), ["-D", "-o", "-"]);
    assert.equal(run.status, 0, run.stderr);
    const dumped = run.stdout.split("\n").filter((l) => /\sIN\s/.test(l) && !/\sIN\s+(SOA|NS)\s/.test(l));
    assert.equal(dumped.length, orgZone.length);
    // Long TXT records come back as the same character-strings.
    const dkim = orgZone.find((r) => r.key === "TXT s1-rsa._domainkey.example.org")!;
    assert.ok(
      dumped.some((l) => l.startsWith("s1-rsa._domainkey.example.org.") && l.endsWith(`TXT\t${dkim.content}`)),
      dumped.join("\n"),
    );
  });
});
