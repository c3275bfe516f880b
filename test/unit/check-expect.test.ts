import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import { readStackFile } from "../../components/config/stack-file";
import { validateStackConfig } from "../../components/config/validate";
import { planDomainRecords, planHostRecords } from "../../components/records/plan";
import { placeholderDkimKeys } from "../../components/records/placeholders";
import { mtaStsId, mtaStsPolicy } from "../../components/records/mta-sts";
import type { HostFacts, PlannedRecord } from "../../components/records/types";
import { expectationsFromPlan, holdsStandIn } from "../../infra/cli/check-expect";
import { UNKNOWN_ACME_ACCOUNT, UNKNOWN_IPV4, UNKNOWN_IPV6_NETWORK } from "../../infra/offline/mock-provider";
import { UNKNOWN_RSA_KEY } from "../../infra/cli/plan";

const spec = validateStackConfig(readStackFile(path.join(__dirname, "..", "..", "stacks", "Pulumi.dev.yaml")));
const org = spec.domains.find((d) => d.name === "example.org")!;
const net = spec.domains.find((d) => d.name === "example.net")!;

/** The dev stack's zones as the planner builds them (the host records live with example.org). */
function zones(facts: HostFacts): Record<string, PlannedRecord[]> {
  return {
    "example.org": [...planHostRecords(facts), ...planDomainRecords(org, facts, placeholderDkimKeys(org), spec.acme)],
    "example.net": planDomainRecords(net, facts, placeholderDkimKeys(net), spec.acme),
  };
}

const known: HostFacts = {
  hostname: "mail.example.org",
  ipv4: "198.51.100.25",
  ipv6: "2001:db8:1::1",
  tlsSpkiSha256: "ab".repeat(32),
  acmeAccountUri: "https://acme-v02.api.letsencrypt.org/acme/acct/7",
};
const sources = { ipv4: "options" as const, ipv6: "options" as const };

describe("expectationsFromPlan", () => {
  const plan = { stack: "dev", hostname: "mail.example.org", ipv4: "198.51.100.25", ipv6: "2001:db8:1::1", zones: zones(known) };

  test("example.net: its own records, the shared mail host, the policy the id was made from", () => {
    const e = expectationsFromPlan(plan, net, { addressSource: sources });
    const policy = mtaStsPolicy(net, ["mail.example.org"]);
    assert.deepEqual(
      { ...e, dkim: undefined, caa: undefined },
      {
        stack: "dev",
        domain: "example.net",
        hostname: "mail.example.org",
        ipv4: "198.51.100.25",
        ipv6: "2001:db8:1::1",
        addressSource: sources,
        mx: [{ host: "mail.example.org", priority: 10 }],
        spfDomain: "v=spf1 ip4:198.51.100.25 ip6:2001:db8:1::1 -all",
        spfHelo: "v=spf1 ip4:198.51.100.25 ip6:2001:db8:1::1 -all",
        dkim: undefined,
        dmarc: "v=DMARC1; p=quarantine; sp=quarantine; adkim=r; aspf=r; rua=mailto:dmarc-reports@example.net",
        tlsrpt: "v=TLSRPTv1; rua=mailto:postmaster@example.net",
        mtaSts: { id: mtaStsId(policy), policy, mode: "testing" },
        caa: undefined,
        tlsa: true,
      },
    );
  });

  test("DKIM selectors and algorithms come from the plan; keys only from the deployed ones", () => {
    const e = expectationsFromPlan(plan, org, {
      addressSource: sources,
      dkimKeys: [{ selector: "s1-rsa", algorithm: "rsa", publicKeyB64: "MIIBdeployed" }],
    });
    assert.deepEqual(e.dkim, [
      { selector: "s1-rsa", algorithm: "rsa", publicKeyB64: "MIIBdeployed" },
      { selector: "s1-ed25519", algorithm: "ed25519", publicKeyB64: null },
    ]);
  });

  test('CAA: issue with the known account and issuewild ";"', () => {
    assert.deepEqual(expectationsFromPlan(plan, org, { addressSource: sources }).caa, [
      {
        tag: "issue",
        value: "letsencrypt.org; accounturi=https://acme-v02.api.letsencrypt.org/acme/acct/7; validationmethods=dns-01,http-01",
        accountUriUnknown: false,
      },
      { tag: "issuewild", value: ";", accountUriUnknown: false },
    ]);
  });

  test("stand-in addresses and account: addresses and SPF unknown, accounturi required but not compared", () => {
    const standIn: HostFacts = { ...known, ipv4: UNKNOWN_IPV4, ipv6: `${UNKNOWN_IPV6_NETWORK}1`, acmeAccountUri: UNKNOWN_ACME_ACCOUNT };
    const e = expectationsFromPlan({ stack: "dev", hostname: "mail.example.org", ipv4: null, ipv6: null, zones: zones(standIn) }, org, {
      addressSource: { ipv4: "unknown", ipv6: "unknown" },
    });
    assert.equal(e.ipv4, null);
    assert.equal(e.ipv6, null);
    assert.equal(e.spfDomain, null);
    assert.equal(e.spfHelo, null);
    assert.equal(e.caa[0].accountUriUnknown, true);
    // Address-free records are still compared.
    assert.equal(e.dmarc, "v=DMARC1; p=reject; sp=reject; adkim=r; aspf=r; rua=mailto:postmaster@example.org");
  });

  test("a plan without the domain's MX is refused (the plan and the reader disagree)", () => {
    assert.throws(
      () => expectationsFromPlan({ ...plan, zones: { "example.org": [] } }, org, { addressSource: sources }),
      /has no MX record for example\.org/,
    );
  });

  test("holdsStandIn spots each stand-in", () => {
    assert.equal(holdsStandIn(`v=spf1 ip4:${UNKNOWN_IPV4} -all`), true);
    assert.equal(holdsStandIn(`${UNKNOWN_IPV6_NETWORK}1`), true);
    assert.equal(holdsStandIn(`letsencrypt.org; accounturi=${UNKNOWN_ACME_ACCOUNT}`), true);
    assert.equal(holdsStandIn(`v=DKIM1; k=rsa; p=${UNKNOWN_RSA_KEY}`), true);
    assert.equal(holdsStandIn("v=spf1 ip4:198.51.100.25 -all"), false);
  });
});
