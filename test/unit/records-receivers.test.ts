// Receivers' own validators (mailauth, strict RFC mode) read the planned records through an
// in-memory resolver: what we publish is what SPF/DKIM/DMARC/MTA-STS verifiers accept.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { dkimSign, dkimVerify, type DNSResolver } from "mailauth";
import { spf } from "mailauth/lib/spf";
import { dmarc } from "mailauth/lib/dmarc";
import { parsePolicy, resolvePolicy, validateMx } from "mailauth/lib/mta-sts";
import { planDomainRecords, planHostRecords } from "../../components/records/plan";
import { mtaStsPolicy } from "../../components/records/mta-sts";
import { dkimPublicKeyFromPem } from "../../components/records/dkim";
import { parseCharacterStrings } from "../../components/records/txt";
import type { AcmeSpec, DomainSpec } from "../../components/spec";
import type { HostFacts, PlannedRecord } from "../../components/records/types";
import { ACME_SPEC, HOST_FACTS, domainSpec } from "../fixtures/stack-spec";

const domain: DomainSpec = domainSpec("example.org", {
  dmarc: { policy: "reject", subdomainPolicy: "quarantine", rua: ["dmarc@example.org"], ruf: [], adkim: "s", aspf: "s", pct: 100 },
  spf: { ip4: ["203.0.113.0/24"], ip6: [], include: [], all: "-all" },
});
const acme: AcmeSpec = ACME_SPEC;
const facts: HostFacts = HOST_FACTS;

const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
const ed = generateKeyPairSync("ed25519");
const pem = (k: { export(o: object): string | Buffer }, type: string) => k.export({ type, format: "pem" }) as string;
const dkimKeys = [
  { selector: "s1-rsa", algorithm: "rsa" as const, publicKeyB64: dkimPublicKeyFromPem(pem(rsa.publicKey, "spki"), "rsa") },
  { selector: "s1-ed25519", algorithm: "ed25519" as const, publicKeyB64: dkimPublicKeyFromPem(pem(ed.publicKey, "spki"), "ed25519") },
];
const records = [...planHostRecords(facts), ...planDomainRecords(domain, facts, dkimKeys, acme)];

/** Answers like node:dns promises.resolve, from the planned records only. */
function resolverFor(rs: PlannedRecord[]): DNSResolver {
  // mailauth's type omits MX answers ({exchange, priority}), which it also accepts.
  const resolve = async (name: string, type: string): Promise<unknown[]> => {
    const fqdn = name.toLowerCase().replace(/\.$/, "");
    const atName = rs.filter((r) => r.name === fqdn);
    const found = atName.filter((r) => r.type === type);
    if (found.length === 0) {
      throw Object.assign(new Error(`${type} ${fqdn}`), { code: atName.length ? "ENODATA" : "ENOTFOUND" });
    }
    return found.map((r) => {
      if (r.type === "TXT") return parseCharacterStrings(r.content).map((s) => s.toString("utf8"));
      if (r.type === "MX") return { exchange: r.content, priority: r.priority };
      return r.content;
    });
  };
  return resolve as DNSResolver;
}
const resolver = resolverFor(records);

describe("receivers accept the planned records (mailauth, strict)", () => {
  for (const ip of ["198.51.100.25", "2001:db8:1::1", "203.0.113.7"]) {
    test(`SPF passes mail from example.org sent by ${ip}`, async () => {
      const result = await spf({ ip, sender: "user@example.org", helo: "mail.example.org", mta: "mx.example.net", resolver, strict: true });
      assert.equal(result.status.result, "pass");
    });
  }

  test("SPF fails mail from example.org sent by any other address (-all)", async () => {
    const result = await spf({
      ip: "198.51.100.200",
      sender: "user@example.org",
      helo: "mail.example.org",
      mta: "mx.example.net",
      resolver,
      strict: true,
    });
    assert.equal(result.status.result, "fail");
  });

  test("the HELO-name SPF passes the host itself and fails others (RFC 7208 2.3)", async () => {
    const sender = "postmaster@mail.example.org";
    const own = await spf({ ip: "2001:db8:1::1", sender, helo: "mail.example.org", mta: "mx.example.net", resolver, strict: true });
    const other = await spf({ ip: "203.0.113.7", sender, helo: "mail.example.org", mta: "mx.example.net", resolver, strict: true });
    assert.deepEqual([own.status.result, other.status.result], ["pass", "fail"]);
  });

  for (const [selector, key] of [
    ["s1-rsa", rsa.privateKey],
    ["s1-ed25519", ed.privateKey],
  ] as const) {
    test(`a message signed with ${selector} verifies against the published key`, async () => {
      const message = Buffer.from("From: user@example.org\r\nTo: friend@example.net\r\nSubject: hi\r\n\r\nhello\r\n");
      const signed = await dkimSign(message, {
        signingDomain: "example.org",
        selector,
        privateKey: pem(key, "pkcs8"),
        signatureData: [{ signingDomain: "example.org", selector, privateKey: pem(key, "pkcs8") }],
        strict: true,
      });
      assert.notEqual(signed.signatures, "");
      assert.deepEqual(signed.errors, []);
      const verified = await dkimVerify(Buffer.concat([Buffer.from(signed.signatures), message]), { resolver, strict: true });
      assert.deepEqual(
        verified.results.map((r) => [r.selector, r.status.result]),
        [[selector, "pass"]],
      );
    });
  }

  test("DMARC reads p=reject, sp=quarantine and passes aligned mail", async () => {
    const result = await dmarc({
      headerFrom: "user@example.org",
      spfDomains: ["example.org"],
      dkimDomains: [{ domain: "example.org", aligned: "example.org" }],
      resolver,
      strict: true,
    });
    assert.ok(result);
    assert.deepEqual([result.status.result, result.p, result.sp], ["pass", "reject", "quarantine"]);
  });

  test("MTA-STS: the TXT record yields the policy id, strict mode", async () => {
    const txt = records.find((r) => r.key === "TXT _mta-sts.example.org")!;
    const id = await resolvePolicy("example.org", { resolver, strict: true });
    assert.equal(`"v=STSv1; id=${id}"`, txt.content);
  });

  test("MTA-STS: the policy file parses in strict mode and admits the MX host only", () => {
    const policy = parsePolicy(mtaStsPolicy(domain, ["mail.example.org"]), { strict: true });
    assert.deepEqual([policy.mode, policy.mx, policy.maxAge], ["enforce", ["mail.example.org"], 604800]);
    assert.deepEqual([validateMx("mail.example.org", policy).valid, validateMx("other.example.net", policy).valid], [true, false]);
  });

  test("TLSRPT matches RFC 8460 3's grammar", () => {
    const txt = records.find((r) => r.key === "TXT _smtp._tls.example.org")!;
    assert.match(txt.content, /^"v=TLSRPTv1; ?rua=(mailto:[^,;!\s]+|https:\/\/[^,;!\s]+)(,(mailto:[^,;!\s]+|https:\/\/[^,;!\s]+))*;?"$/);
  });
});
