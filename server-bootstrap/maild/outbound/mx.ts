// Where mail for a domain goes (RFC 5321 5.1): its MX hosts in preference order, or the domain
// itself when it has no MX records (the implicit MX), or nowhere (null MX, RFC 7505; a name that
// does not exist). The decisions are pure functions over a small DNS interface, so tests can feed
// them any answer; the real one is dns-cache.ts's, on the configured resolvers.
import { isIP } from "node:net";

/** The DNS lookups the transport makes (records without DNSSEC state), with the error codes of Node's resolver. */
export interface DnsLookup {
  resolveMx(name: string): Promise<{ exchange: string; priority: number }[]>;
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
  resolveTxt(name: string): Promise<string[][]>;
}

/**
 * How a failed lookup is to be read. c-ares reports NXDOMAIN as ENOTFOUND and a name without
 * records of the type (NODATA) as ENODATA; everything else (SERVFAIL, timeouts, refusals,
 * garbled answers) may pass, so it is temporary (RFC 5321 5.1: a temporary DNS error defers).
 */
export type DnsFailure = "nxdomain" | "nodata" | "temporary";

export function dnsFailure(err: unknown): DnsFailure {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ENOTFOUND") return "nxdomain";
  if (code === "ENODATA") return "nodata";
  return "temporary";
}

export interface MxHost {
  /** lowercase, no trailing dot */
  name: string;
  preference: number;
  /** the domain itself, reached through its address records (no MX records) */
  implicit: boolean;
}

export type Route =
  | { kind: "hosts"; hosts: MxHost[] }
  /** RFC 7505: the domain says it accepts no mail */
  | { kind: "null-mx" }
  /** the domain does not exist */
  | { kind: "nxdomain" }
  /** the domain exists but has neither MX nor address records */
  | { kind: "no-mail-host" }
  /** our own host name is the most preferred MX: delivering would loop (RFC 5321 5.1) */
  | { kind: "loop" }
  | { kind: "temporary"; reason: string };

function normalize(name: string): string {
  return name.toLowerCase().replace(/\.$/, "");
}

function shuffle<T>(items: T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/**
 * MX records in the order to try them: lowest preference first, equal preferences in random
 * order to spread the load (RFC 5321 5.1). The null MX "." is dropped here: alone it is handled
 * by `findRoute`; beside other records it is a misconfiguration and they win (RFC 7505 3).
 * Names that are IP literals are dropped: an MX names a host (RFC 5321 5.1, RFC 2181 10.3).
 */
export function orderMx(records: { exchange: string; priority: number }[], random: () => number = Math.random): MxHost[] {
  const byPreference = new Map<number, MxHost[]>();
  const seen = new Set<string>();
  for (const r of records) {
    const name = normalize(r.exchange);
    if (name === "" || isIP(name) !== 0 || seen.has(name)) continue;
    seen.add(name);
    const list = byPreference.get(r.priority) ?? [];
    list.push({ name, preference: r.priority, implicit: false });
    byPreference.set(r.priority, list);
  }
  return [...byPreference.keys()].sort((a, b) => a - b).flatMap((p) => shuffle(byPreference.get(p)!, random));
}

/** RFC 7505 3: exactly one MX record, preference 0, exchange "." (Node reports the root as ""). */
export function isNullMx(records: { exchange: string; priority: number }[]): boolean {
  return records.length === 1 && normalize(records[0].exchange) === "" && records[0].priority === 0;
}

/**
 * RFC 5321 5.1: when our own name is among the MX hosts, that host and every less preferred one
 * are dropped; only more preferred hosts may be tried. None left: the mail would loop.
 */
export function dropSelfAndBelow(hosts: MxHost[], ownHostname: string): MxHost[] | "loop" {
  const own = normalize(ownHostname);
  const self = hosts.find((h) => h.name === own);
  if (!self) return hosts;
  const kept = hosts.filter((h) => h.preference < self.preference);
  return kept.length > 0 ? kept : "loop";
}

async function lookup<T>(fn: () => Promise<T[]>): Promise<T[] | DnsFailure> {
  try {
    return await fn();
  } catch (err) {
    return dnsFailure(err);
  }
}

/** Resolves the route for a recipient domain (RFC 5321 5.1, RFC 7505). */
export async function findRoute(dns: DnsLookup, domain: string, ownHostname: string, random: () => number = Math.random): Promise<Route> {
  const mx = await lookup(() => dns.resolveMx(domain));
  if (mx === "nxdomain") return { kind: "nxdomain" };
  if (mx === "temporary") return { kind: "temporary", reason: `MX lookup for ${domain} failed temporarily` };
  let hosts: MxHost[];
  if (mx === "nodata" || mx.length === 0) {
    // No MX records: the domain's own address records are the implicit MX (preference 0).
    // Both families are asked, whatever we send over: the answer decides "no mail host at all".
    const [a, aaaa] = await Promise.all([lookup(() => dns.resolve4(domain)), lookup(() => dns.resolve6(domain))]);
    if (a === "temporary" || aaaa === "temporary") return { kind: "temporary", reason: `address lookup for ${domain} failed temporarily` };
    if (a === "nxdomain" && aaaa === "nxdomain") return { kind: "nxdomain" };
    const found = (Array.isArray(a) ? a.length : 0) + (Array.isArray(aaaa) ? aaaa.length : 0);
    if (found === 0) return { kind: "no-mail-host" };
    hosts = [{ name: normalize(domain), preference: 0, implicit: true }];
  } else {
    if (isNullMx(mx)) return { kind: "null-mx" };
    hosts = orderMx(mx, random);
    if (hosts.length === 0) return { kind: "no-mail-host" };
  }
  const kept = dropSelfAndBelow(hosts, ownHostname);
  return kept === "loop" ? { kind: "loop" } : { kind: "hosts", hosts: kept };
}

export interface AddressFamilies {
  ipv6: boolean;
  ipv4: boolean;
}

/**
 * The addresses of one MX host to try, IPv6 first (then IPv4), each family only if enabled.
 * `temporary` only when no address was found and some lookup failed temporarily: then another
 * attempt later may find one; a host without any address is simply skipped.
 */
export async function hostAddresses(dns: DnsLookup, host: string, families: AddressFamilies): Promise<string[] | "temporary"> {
  const [v6, v4] = await Promise.all([
    families.ipv6 ? lookup(() => dns.resolve6(host)) : Promise.resolve([] as string[]),
    families.ipv4 ? lookup(() => dns.resolve4(host)) : Promise.resolve([] as string[]),
  ]);
  const addresses = [...(Array.isArray(v6) ? v6 : []), ...(Array.isArray(v4) ? v4 : [])];
  if (addresses.length === 0 && (v6 === "temporary" || v4 === "temporary")) return "temporary";
  return addresses;
}
