// Blocklists (DNSBLs of addresses, DBLs of domains) asked about our own server: the query names of
// RFC 5782, what an answer means, and a catalogue of the public lists with their return codes and
// delisting pages. Used by maild's monitor on the box and by `mailstack check` from outside.
//
// RFC 5782 2.1/2.4: an IPv4 address is asked as its reversed octets, an IPv6 address as its 32
// reversed nibbles, a domain as itself, each under the list's zone. An A record means listed (its
// TXT record says why); NXDOMAIN means not listed. RFC 5782 5: an IPv4 list must list 127.0.0.2
// and must not list 127.0.0.1; a domain list must list "test" and must not list "invalid". We ask
// the first of each pair, so a list that refuses our resolver (Spamhaus refuses public resolvers)
// reads as "cannot tell", never as "clean".
import { isIP } from "node:net";

export type BlocklistKind = "ip" | "domain";

export interface BlocklistZone {
  zone: string;
  kind: BlocklistKind;
  /** whether IPv6 addresses are asked (RFC 5782 2.4); IPv4-only lists answer nothing useful for them */
  ipv6: boolean;
  /** an answer that is the list refusing the query, not a listing, with what it means */
  errorCodes: Record<string, string>;
  /** a page to look the entry up and ask for removal; `{ip}` or `{domain}` is filled in */
  delistUrl?: string;
  /** the RFC 5782 5 test entry that must be listed (a list may use its own, e.g. dbltest.com) */
  testEntry: string;
}

// Spamhaus answers these instead of a listing when it will not answer the query
// (spamhaus.org/news/article/788; Mail-in-a-Box management/status_checks.py l.333-356).
const SPAMHAUS_ERRORS: Record<string, string> = {
  "127.255.255.252": "Spamhaus: typing error in the zone name",
  "127.255.255.254": "Spamhaus refuses queries through public or open resolvers: use the box's own resolver",
  "127.255.255.255": "Spamhaus refuses this resolver for excessive query volume",
};

/**
 * Public lists whose return codes and removal pages are documented (sources: rspamd 3.4
 * modules.d/rbl.conf; Mail-in-a-Box status_checks.py l.316-356, l.800-823; spamcop.net FAQ).
 */
export const KNOWN_BLOCKLISTS: readonly BlocklistZone[] = [
  {
    zone: "zen.spamhaus.org",
    kind: "ip",
    ipv6: true,
    errorCodes: SPAMHAUS_ERRORS,
    delistUrl: "https://www.spamhaus.org/query/ip/{ip}",
    testEntry: "127.0.0.2",
  },
  {
    zone: "dbl.spamhaus.org",
    kind: "domain",
    ipv6: false,
    // 127.0.1.255: an IP address was asked of the domain list (rspamd rbl.conf)
    errorCodes: { ...SPAMHAUS_ERRORS, "127.0.1.255": "Spamhaus DBL: an IP address was queried instead of a domain" },
    delistUrl: "https://www.spamhaus.org/query/domain/{domain}",
    testEntry: "dbltest.com",
  },
  {
    zone: "bl.spamcop.net",
    kind: "ip",
    ipv6: false,
    errorCodes: {},
    delistUrl: "https://www.spamcop.net/bl.shtml?{ip}",
    testEntry: "127.0.0.2",
  },
  {
    zone: "b.barracudacentral.org",
    kind: "ip",
    ipv6: false,
    errorCodes: {},
    delistUrl: "https://www.barracudacentral.org/rbl/removal-request",
    testEntry: "127.0.0.2",
  },
  {
    zone: "dnsbl-1.uceprotect.net",
    kind: "ip",
    ipv6: false,
    errorCodes: {},
    delistUrl: "https://www.uceprotect.net/en/rblcheck.php",
    testEntry: "127.0.0.2",
  },
  {
    zone: "psbl.surriel.com",
    kind: "ip",
    ipv6: false,
    errorCodes: {},
    delistUrl: "https://psbl.org/listing?ip={ip}",
    testEntry: "127.0.0.2",
  },
  { zone: "bl.mailspike.net", kind: "ip", ipv6: false, errorCodes: {}, testEntry: "127.0.0.2" },
  { zone: "bl.spameatingmonkey.net", kind: "ip", ipv6: false, errorCodes: {}, testEntry: "127.0.0.2" },
];

/**
 * Checked unless the stack names others: the lists Mail-in-a-Box (ZEN, DBL) and mox (SpamCop)
 * check for their own server, free for low volumes through one's own resolver. Barracuda needs
 * the querying resolver registered first, and UCEPROTECT's higher levels list whole providers,
 * so neither is a default.
 */
export const DEFAULT_IP_BLOCKLISTS: readonly string[] = ["zen.spamhaus.org", "bl.spamcop.net"];
export const DEFAULT_DOMAIN_BLOCKLISTS: readonly string[] = ["dbl.spamhaus.org"];

/** A list by zone name: the catalogue's entry, or a list of our own that follows RFC 5782 plainly. */
export function blocklistZone(zone: string, kind: BlocklistKind): BlocklistZone {
  const known = KNOWN_BLOCKLISTS.find((z) => z.zone === zone && z.kind === kind);
  if (known) return known;
  return { zone, kind, ipv6: true, errorCodes: {}, testEntry: kind === "ip" ? "127.0.0.2" : "test" };
}

/** Whether an address is never on a public list: loopback, private, link-local (mox skips them too). */
export function isNonPublicAddress(ip: string): boolean {
  const family = isIP(ip);
  if (family === 4) {
    const [a, b] = ip.split(".").map(Number);
    return a === 10 || a === 127 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254) || a === 0;
  }
  if (family === 6) {
    const first = expandIpv6(ip).slice(0, 4);
    return ip === "::1" || ip === "::" || /^f[cd]/.test(first) || /^fe[89ab]/.test(first);
  }
  return true;
}

function expandIpv6(ip: string): string {
  const [head, tail] = ip.toLowerCase().split("::");
  const h = head ? head.split(":") : [];
  const t = tail !== undefined && tail !== "" ? tail.split(":") : [];
  const fill = tail === undefined ? [] : Array(8 - h.length - t.length).fill("0");
  return [...h, ...fill, ...t].map((g) => g.padStart(4, "0")).join("");
}

/** The RFC 5782 2.1/2.4 query name of `target` (an address or a domain) under `zone`. */
export function blocklistQueryName(target: string, zone: string): string {
  const family = isIP(target);
  if (family === 4) return `${target.split(".").reverse().join(".")}.${zone}`;
  if (family === 6) return `${[...expandIpv6(target)].reverse().join(".")}.${zone}`;
  return `${target.replace(/\.$/, "").toLowerCase()}.${zone}`;
}

export type BlocklistStatus = "listed" | "clear" | "error";

export interface BlocklistResult {
  zone: string;
  kind: BlocklistKind;
  /** the address or domain asked about */
  target: string;
  status: BlocklistStatus;
  /** the A records answered (return codes), when any */
  codes: string[];
  /** listed: the list's TXT reason; error: why the answer cannot be used */
  reason?: string;
  /** where to look the listing up and ask for removal */
  delistUrl?: string;
}

/** What a set of A records from `zone` means (RFC 5782 2.1: 127.0.0.0/8 values are listings). */
export function interpretCodes(zone: BlocklistZone, codes: string[]): { status: BlocklistStatus; reason?: string } {
  if (codes.length === 0) return { status: "clear" };
  const errors = codes.filter((c) => zone.errorCodes[c] !== undefined);
  if (errors.length > 0) return { status: "error", reason: zone.errorCodes[errors[0]] };
  const outside = codes.find((c) => !c.startsWith("127."));
  if (outside !== undefined) {
    // A resolver that answers NXDOMAIN with an address of its own (an ISP's search page) makes
    // every query look listed.
    return { status: "error", reason: `answer ${outside} is outside 127.0.0.0/8 (RFC 5782 2.1): the resolver rewrites answers` };
  }
  return { status: "listed" };
}

/** DNS as the check needs it: empty lists for NXDOMAIN/NODATA, a thrown error for a failure. */
export interface BlocklistDns {
  resolve4(name: string): Promise<string[]>;
  /** each TXT record's strings joined */
  resolveTxt(name: string): Promise<string[]>;
}

const EMPTY_ANSWERS = new Set(["ENOTFOUND", "ENODATA"]);

/** Wraps resolve4/resolveTxt of a node:dns Resolver into BlocklistDns (NXDOMAIN and NODATA are empty answers). */
export function blocklistDnsFrom(resolver: {
  resolve4(name: string): Promise<string[]>;
  resolveTxt(name: string): Promise<string[][]>;
}): BlocklistDns {
  const empty = (e: NodeJS.ErrnoException) => {
    if (EMPTY_ANSWERS.has(e.code ?? "")) return [];
    throw e;
  };
  return {
    resolve4: (name) => resolver.resolve4(name).catch(empty),
    resolveTxt: (name) =>
      resolver
        .resolveTxt(name)
        .then((rs) => rs.map((chunks) => chunks.join("")))
        .catch(empty),
  };
}

export interface BlocklistTargets {
  /** the server's own public addresses */
  ips: string[];
  /** our mail domains and the host name */
  domains: string[];
}

/**
 * Asks every list about every target that suits it (addresses of the right family for address
 * lists, domains for domain lists). A list that does not list its own test entry, or fails to
 * answer, makes its rows "error": no verdict is better than a false "clear".
 */
export async function checkBlocklists(targets: BlocklistTargets, zones: BlocklistZone[], dns: BlocklistDns): Promise<BlocklistResult[]> {
  const ips = targets.ips.filter((ip) => !isNonPublicAddress(ip));
  return (
    await Promise.all(
      zones.map(async (zone) => {
        const asked = zone.kind === "domain" ? targets.domains : ips.filter((ip) => isIP(ip) === 4 || zone.ipv6);
        if (asked.length === 0) return [];
        const base = (target: string): Pick<BlocklistResult, "zone" | "kind" | "target"> => ({ zone: zone.zone, kind: zone.kind, target });
        let health: string | undefined;
        try {
          const test = await dns.resolve4(blocklistQueryName(zone.testEntry, zone.zone));
          const verdict = interpretCodes(zone, test);
          if (verdict.status === "error") health = verdict.reason;
          else if (verdict.status === "clear")
            health = `the list does not list its test entry ${zone.testEntry} (RFC 5782 5): it is not answering this resolver`;
        } catch (e) {
          health = `lookup failed: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
        }
        if (health !== undefined) return asked.map((t): BlocklistResult => ({ ...base(t), status: "error", codes: [], reason: health }));
        return Promise.all(asked.map((t) => lookupOne(zone, t, dns)));
      }),
    )
  ).flat();
}

async function lookupOne(zone: BlocklistZone, target: string, dns: BlocklistDns): Promise<BlocklistResult> {
  const name = blocklistQueryName(target, zone.zone);
  const base = { zone: zone.zone, kind: zone.kind, target };
  let codes: string[];
  try {
    codes = (await dns.resolve4(name)).sort();
  } catch (e) {
    return { ...base, status: "error", codes: [], reason: `lookup failed: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
  }
  const verdict = interpretCodes(zone, codes);
  if (verdict.status !== "listed") return { ...base, status: verdict.status, codes, ...(verdict.reason ? { reason: verdict.reason } : {}) };
  const txt = await dns.resolveTxt(name).catch(() => [] as string[]);
  const delistUrl = zone.delistUrl?.replace("{ip}", encodeURIComponent(target)).replace("{domain}", encodeURIComponent(target));
  return {
    ...base,
    status: "listed",
    codes,
    reason: txt.length > 0 ? txt.join(" ") : `listed (${codes.join(", ")})`,
    // Without a documented page of its own, a multi-list lookup (what mox prints for a listed IP)
    delistUrl: delistUrl ?? (zone.kind === "ip" ? `https://multirbl.valli.org/lookup/${encodeURIComponent(target)}.html` : undefined),
  };
}
