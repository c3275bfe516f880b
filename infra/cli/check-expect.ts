// What `mailstack check` expects to find for one domain, read from the stack's plan: the records
// the Pulumi program publishes. Values the offline plan cannot know (addresses not given, the ACME
// account, DKIM keys, the TLS key) are marked unknown and compared only where they are given.
import { parseTxtContent } from "../../components/records/txt";
import { mtaStsId, mtaStsPolicy, mtaStsRecordName } from "../../components/records/mta-sts";
import { dmarcRecordName } from "../../components/records/dmarc";
import { tlsrptRecordName } from "../../components/records/tlsrpt";
import { tlsaRecordName } from "../../components/records/tlsa";
import { normalizeName } from "../../components/records/plan";
import type { CaaData, DkimPublicKey, PlannedRecord } from "../../components/records/types";
import type { DomainSpec, MtaStsMode } from "../../components/spec";
import { UNKNOWN_ACME_ACCOUNT, UNKNOWN_IPV4, UNKNOWN_IPV6_NETWORK } from "../offline/mock-provider";
import { UNKNOWN_RSA_KEY, type StackPlan } from "./plan";

export interface ExpectedDkim {
  selector: string;
  /** from the planned record's k=; null when the selector came from --selector */
  algorithm: DkimPublicKey["algorithm"] | null;
  /** the deployed key's p= (from --dkim-keys); null: unknown, only syntax is checked */
  publicKeyB64: string | null;
}

export interface ExpectedCaa {
  tag: CaaData["tag"];
  value: string;
  /** the plan pins an ACME account (RFC 8657 accounturi) whose URL is not known offline */
  accountUriUnknown: boolean;
}

export interface Expectations {
  stack: string;
  domain: string;
  hostname: string;
  /** the host's planned addresses; null where the plan does not know them */
  ipv4: string | null;
  ipv6: string | null;
  /** "options": given with --ipv4/--ipv6, so DNS is compared with them; "dns": taken from DNS */
  addressSource: { ipv4: AddressSource; ipv6: AddressSource };
  mx: { host: string; priority: number }[];
  /** TXT values; null where they depend on addresses the plan does not know */
  spfDomain: string | null;
  spfHelo: string | null;
  dkim: ExpectedDkim[];
  dmarc: string;
  /** null: the plan publishes no TLSRPT record */
  tlsrpt: string | null;
  mtaSts: { id: string; policy: string; mode: MtaStsMode };
  caa: ExpectedCaa[];
  /** the plan publishes DANE TLSA for port 25 (its content pins a key the offline plan does not have) */
  tlsa: boolean;
}

export type AddressSource = "options" | "dns" | "unknown";

export interface ExpectOptions {
  addressSource: { ipv4: AddressSource; ipv6: AddressSource };
  /** the deployed public DKIM keys of this domain (`pulumi stack output dkimPublicKeys`) */
  dkimKeys?: DkimPublicKey[];
}

/** True when a planned value still holds one of the offline plan's stand-ins. */
export function holdsStandIn(text: string): boolean {
  return (
    text.includes(UNKNOWN_IPV4) ||
    text.includes(UNKNOWN_IPV6_NETWORK) ||
    text.includes(UNKNOWN_ACME_ACCOUNT) ||
    text.includes(UNKNOWN_RSA_KEY)
  );
}

/**
 * The expectations for `domain` from a plan of the stack that manages it. Throws when the plan
 * lacks a record the planner always publishes: the plan and this reader disagree, a bug.
 */
export function expectationsFromPlan(
  plan: Pick<StackPlan, "stack" | "hostname" | "ipv4" | "ipv6" | "zones">,
  domain: DomainSpec,
  options: ExpectOptions,
): Expectations {
  const d = normalizeName(domain.name);
  const host = normalizeName(plan.hostname);
  const all = Object.values(plan.zones).flat();
  const byKey = (key: string): PlannedRecord | undefined => all.find((r) => r.key === key);
  const required = (key: string): PlannedRecord => {
    const r = byKey(key);
    if (!r) throw new Error(`the plan of stack ${plan.stack} has no record "${key}"`);
    return r;
  };
  const txtValue = (r: PlannedRecord | undefined): string | null => {
    if (!r) return null;
    const value = parseTxtContent(r.content);
    return holdsStandIn(value) ? null : value;
  };

  const mx = all.filter((r) => r.type === "MX" && r.name === d).map((r) => ({ host: normalizeName(r.content), priority: r.priority ?? 0 }));
  if (mx.length === 0) throw new Error(`the plan of stack ${plan.stack} has no MX record for ${d}`);

  const keys = new Map((options.dkimKeys ?? []).map((k) => [k.selector, k.publicKeyB64]));
  const dkim = all
    .filter((r) => r.type === "TXT" && r.name.endsWith(`._domainkey.${d}`))
    .map((r): ExpectedDkim => {
      const selector = r.name.slice(0, -`._domainkey.${d}`.length);
      const k = /(?:^|;)\s*k=([a-z0-9]+)/.exec(parseTxtContent(r.content))?.[1];
      return { selector, algorithm: k === "ed25519" ? "ed25519" : "rsa", publicKeyB64: keys.get(selector) ?? null };
    });

  const mtaStsRecord = required(`TXT ${mtaStsRecordName(d)}`);
  const id = /id=([A-Za-z0-9]+)/.exec(parseTxtContent(mtaStsRecord.content))?.[1];
  const policy = mtaStsPolicy(
    domain,
    mx.map((m) => m.host),
  );
  if (id !== mtaStsId(policy)) {
    throw new Error(`the plan of stack ${plan.stack}: _mta-sts id ${id} is not the id of the policy built from the stack's spec`);
  }

  const caa = all
    .filter((r) => r.type === "CAA" && r.name === d && r.data && "tag" in r.data)
    .map((r): ExpectedCaa => {
      const data = r.data as CaaData;
      return { tag: data.tag, value: data.value, accountUriUnknown: data.value.includes(UNKNOWN_ACME_ACCOUNT) };
    });

  const known = (value: string | null, standIn: string): string | null => (value === null || value.startsWith(standIn) ? null : value);
  return {
    stack: plan.stack,
    domain: d,
    hostname: host,
    ipv4: known(plan.ipv4, UNKNOWN_IPV4),
    ipv6: known(plan.ipv6, UNKNOWN_IPV6_NETWORK),
    addressSource: options.addressSource,
    mx,
    spfDomain: txtValue(required(`TXT ${d} spf`)),
    spfHelo: txtValue(byKey(`TXT ${host} spf`)),
    dkim,
    dmarc: txtValue(required(`TXT ${dmarcRecordName(d)}`))!,
    tlsrpt: txtValue(byKey(`TXT ${tlsrptRecordName(d)}`)),
    mtaSts: { id, policy, mode: domain.mtaSts.mode },
    caa,
    tlsa: byKey(`TLSA ${tlsaRecordName(host)}`) !== undefined,
  };
}
