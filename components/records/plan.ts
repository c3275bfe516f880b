// The complete DNS record set a mail domain and its mail host need, as Cloudflare stores it.
//
// Invariants (tested in test/unit/records-plan.test.ts):
// - which records exist (key, name, type) depends only on the spec and on which optional host
//   facts are present, never on their values, so one resource per key can be created before
//   the server's addresses or keys are known (see placeholders.ts);
// - a key is unique per zone, stable across runs and never contains content: changed content
//   is an in-place update;
// - names are FQDN, lowercase, without trailing dot; ttl 1 is Cloudflare's "auto".
import type { AcmeSpec, DomainSpec } from "../spec";
import { canonicalIpv4, canonicalIpv6 } from "./address";
import { caaContent, caaProperties } from "./caa";
import { dkimRecordName, dkimSelectors, dkimTxt } from "./dkim";
import { dmarcRecordName, dmarcTxt } from "./dmarc";
import { mtaStsPolicy, mtaStsPolicyHost, mtaStsRecordName, mtaStsTxt } from "./mta-sts";
import { domainSpf, heloSpf } from "./spf";
import { srvContent, srvRecords } from "./srv";
import { tlsaContent, tlsaData, tlsaRecordName } from "./tlsa";
import { tlsrptRecordName, tlsrptTxt } from "./tlsrpt";
import { txtContent } from "./txt";
import type { DkimPublicKey, HostFacts, PlannedRecord } from "./types";

/** Cloudflare's "automatic" TTL (300 s). */
export const AUTO_TTL = 1;
/** Cloudflare's comment limit on the free plan. */
export const MAX_COMMENT_LENGTH = 100;
/** The one MX preference we publish (RFC 5321 5.1: lower is preferred; a single MX). */
export const MX_PRIORITY = 10;

/** Lowercase, no trailing dot (the form Cloudflare returns names in). */
export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/\.$/, "");
}

/**
 * Records at the mail host's own name: its addresses, the HELO-name SPF and, once the TLS key is
 * known, DANE TLSA. Plan them once per stack, in the zone that contains the hostname.
 */
export function planHostRecords(facts: HostFacts): PlannedRecord[] {
  const host = normalizeName(facts.hostname);
  const records = [
    ...addressRecords(host, facts, "Mail host: MX target, HELO name and PTR value (RFC 5321 5.1, 4.1.1.1)"),
    txt(`TXT ${host} spf`, host, heloSpf(facts.ipv4, facts.ipv6), "SPF for the HELO identity: only this host (RFC 7208 2.3)"),
  ];
  if (facts.tlsSpkiSha256 !== undefined) {
    const data = tlsaData(facts.tlsSpkiSha256);
    const name = tlsaRecordName(host);
    records.push(
      record(`TLSA ${name}`, name, "TLSA", tlsaContent(data), "DANE-EE SPKI SHA-256 pin of the SMTP key (RFC 7672 3.1.1, RFC 7671 5.1)", {
        data,
      }),
    );
  }
  return records;
}

/**
 * Records for one mail domain. `dkim` must hold a key for every selector of every generation
 * in `domain.dkim.generations` (see `dkimSelectors`), and no other.
 */
export function planDomainRecords(domain: DomainSpec, facts: HostFacts, dkim: DkimPublicKey[], acme: AcmeSpec): PlannedRecord[] {
  const d = normalizeName(domain.name);
  const host = normalizeName(facts.hostname);
  const records: PlannedRecord[] = [
    record(`MX ${d}`, d, "MX", host, "Mail for this domain goes to the mail host (RFC 5321 5.1)", { priority: MX_PRIORITY }),
    txt(`TXT ${d} spf`, d, domainSpf(domain.spf, facts.ipv4, facts.ipv6), "SPF: who may send for this domain (RFC 7208 3, 5.6)"),
    ...planDkimRecords(domain, dkim),
    txt(`TXT ${dmarcRecordName(d)}`, dmarcRecordName(d), dmarcTxt(domain.dmarc), "DMARC policy and report addresses (RFC 7489 6.1, 6.3)"),
    txt(
      `TXT ${mtaStsRecordName(d)}`,
      mtaStsRecordName(d),
      mtaStsTxt(mtaStsPolicy(domain, [host])),
      "MTA-STS policy id, changes with the policy (RFC 8461 3.1)",
    ),
    ...addressRecords(mtaStsPolicyHost(d), facts, "Serves the MTA-STS policy over HTTPS (RFC 8461 3.3)"),
  ];
  if (domain.tlsrpt.rua.length > 0) {
    records.push(
      txt(`TXT ${tlsrptRecordName(d)}`, tlsrptRecordName(d), tlsrptTxt(domain.tlsrpt.rua), "Where to send SMTP TLS reports (RFC 8460 3)"),
    );
  }
  if (domain.caa) {
    for (const data of caaProperties({ caaIdentity: acme.caaIdentity, accountUri: facts.acmeAccountUri })) {
      const why =
        data.tag === "issue"
          ? "Only the configured ACME CA and account may issue (RFC 8659 4.2, RFC 8657 3-4)"
          : "No wildcard certificates may be issued (RFC 8659 4.3)";
      records.push(record(`CAA ${d} ${data.tag}`, d, "CAA", caaContent(data), why, { data }));
    }
  }
  for (const srv of srvRecords(host)) {
    const name = `${srv.service}.${d}`;
    records.push(record(`SRV ${name}`, name, "SRV", srvContent(srv.data), srv.why, { data: srv.data, priority: srv.data.priority }));
  }
  records.push(
    ...addressRecords(`autoconfig.${d}`, facts, "Mail client autoconfig host (Thunderbird; draft-ietf-mailmaint-autoconfig)"),
    ...addressRecords(`autodiscover.${d}`, facts, "Outlook autodiscover host ([MS-OXDSCLI] 3.1.5)"),
  );
  return records;
}

/** What the reverse (PTR) records of the host's addresses must say: the mail hostname (RFC 1912 2.1, FCrDNS). */
export function planPtr(facts: HostFacts): { address: string; ptr: string }[] {
  const ptr = normalizeName(facts.hostname);
  return [
    { address: canonicalIpv4(facts.ipv4), ptr },
    { address: canonicalIpv6(facts.ipv6), ptr },
  ];
}

/** Throws when two records share a key: they would be one Cloudflare resource. */
export function assertUniqueKeys(records: PlannedRecord[], where: string): void {
  const seen = new Set<string>();
  for (const r of records) {
    if (seen.has(r.key)) {
      throw new Error(
        `${where}: two records are planned as "${r.key}"; the mail hostname must not be a mail domain or one of its mta-sts/autoconfig/autodiscover hosts`,
      );
    }
    seen.add(r.key);
  }
}

function planDkimRecords(domain: DomainSpec, keys: DkimPublicKey[]): PlannedRecord[] {
  const bySelector = new Map(keys.map((k) => [k.selector, k]));
  const wanted = domain.dkim.generations.flatMap((g) => {
    const s = dkimSelectors(g);
    return [
      { selector: s.rsa, algorithm: "rsa" as const },
      { selector: s.ed25519, algorithm: "ed25519" as const },
    ];
  });
  const unknown = keys.filter((k) => !wanted.some((w) => w.selector === k.selector));
  if (unknown.length > 0) {
    throw new Error(
      `${domain.name}: DKIM key for selector "${unknown[0].selector}" matches no generation in dkim.generations (${domain.dkim.generations.join(", ")})`,
    );
  }
  return wanted.map(({ selector, algorithm }) => {
    const key = bySelector.get(selector);
    if (key === undefined) throw new Error(`${domain.name}: no DKIM public key for selector "${selector}"`);
    if (key.algorithm !== algorithm) {
      throw new Error(`${domain.name}: DKIM selector "${selector}" needs an ${algorithm} key, got ${key.algorithm}`);
    }
    const name = dkimRecordName(selector, normalizeName(domain.name));
    const why =
      algorithm === "rsa"
        ? "DKIM RSA-2048 public key (RFC 6376 3.6.1, RFC 8301 3.2)"
        : "DKIM Ed25519 public key, raw 32 bytes (RFC 8463 3.2)";
    return txt(`TXT ${name}`, name, dkimTxt(key), why);
  });
}

function addressRecords(name: string, facts: HostFacts, why: string): PlannedRecord[] {
  return [
    record(`A ${name}`, name, "A", canonicalIpv4(facts.ipv4), why),
    record(`AAAA ${name}`, name, "AAAA", canonicalIpv6(facts.ipv6), why),
  ];
}

function txt(key: string, name: string, value: string, why: string): PlannedRecord {
  return record(key, name, "TXT", txtContent(value), why);
}

function record(
  key: string,
  name: string,
  type: PlannedRecord["type"],
  content: string,
  comment: string,
  extra: Pick<PlannedRecord, "priority" | "data"> = {},
): PlannedRecord {
  if (comment.length > MAX_COMMENT_LENGTH) {
    throw new Error(`record ${key}: comment is ${comment.length} characters, Cloudflare allows ${MAX_COMMENT_LENGTH}`);
  }
  return { key, name: normalizeName(name), type, content, ...extra, ttl: AUTO_TTL, comment };
}
