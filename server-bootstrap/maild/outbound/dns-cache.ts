// The outbound transport's DNS lookups (MX, A, AAAA, the MTA-STS TXT record, and the AD-bit
// questions of DANE), asked with maild's own stub client (dns-ad.ts) and kept as long as each
// answer's TTL allows: RFC 1035 3.2.1 and RFC 2181 8 for records, RFC 2308 5 for "no such name" and
// "no such record" (the SOA's TTL, at most its MINIMUM field; without a SOA nothing is kept). So a
// queue of messages for one domain asks the resolver once per TTL, as a caching resolver on the
// box would, rather than several times per message; the same question asked while it is under
// way waits for that answer. Other RCODEs and failed queries are not kept.
//
// Bounds: MAX_ENTRIES answers (the oldest go first) and MAX_TTL_SECONDS, c-ares' own cap for its
// query cache (ares_init_options(3), qcache_max_ttl: 3600).
//
// The DnsLookup it offers (mx.ts) throws what Node's resolver (c-ares) throws, since mx.ts
// (dnsFailure) and mailauth's MTA-STS discovery read those codes: ENOTFOUND for NXDOMAIN, ENODATA
// for a name without records of the type, E<RCODE> (ESERVFAIL, EREFUSED, ...) otherwise
// (node:dns "Error codes"); a query that got no answer fails as the stub client says.
import { RCODE, RRTYPE, type AdQuery, type DnsAnswer } from "./dns-ad";
import type { DnsLookup } from "./mx";
import { ipv6GroupsText } from "../../../components/shared/ipv6-text";

const MAX_ENTRIES = 10_000;
const MAX_TTL_SECONDS = 3600;

// RFC 1035 4.1.1 and RFC 6895 2.3 names, as c-ares reports them (ares_strerror codes in node:dns)
const RCODE_ERRORS: Record<number, string> = {
  [RCODE.FORMERR]: "EFORMERR",
  [RCODE.SERVFAIL]: "ESERVFAIL",
  [RCODE.NOTIMP]: "ENOTIMP",
  [RCODE.REFUSED]: "EREFUSED",
};

export interface CachingDns {
  /** the AD-bit questions (DANE), cached */
  query: AdQuery;
  /** MX, A, AAAA and TXT lookups on the same cache */
  lookup: DnsLookup;
  /** answers held now */
  readonly size: number;
}

/** How long `answer` to a question for `type` may be kept, in seconds; 0: not at all. */
export function cacheSeconds(answer: DnsAnswer, type: number): number {
  let ttl: number | undefined;
  if (answer.rcode === RCODE.NOERROR && answer.answers.some((r) => r.type === type)) {
    // every record of the chain (CNAMEs included) must still be valid
    ttl = Math.min(...answer.answers.map((r) => r.ttl));
  } else if (answer.rcode === RCODE.NXDOMAIN || answer.rcode === RCODE.NOERROR) {
    ttl = answer.negativeTtl;
  }
  return answer.truncated || ttl === undefined ? 0 : Math.min(ttl, MAX_TTL_SECONDS);
}

export function createCachingDns(query: AdQuery, now: () => number = Date.now): CachingDns {
  const kept = new Map<string, { answer: DnsAnswer; until: number }>();
  const asking = new Map<string, Promise<DnsAnswer>>();

  const cached: AdQuery = (name, type) => {
    const key = `${type} ${name.toLowerCase().replace(/\.$/, "")}`;
    const entry = kept.get(key);
    if (entry && entry.until > now()) return Promise.resolve(entry.answer);
    if (entry) kept.delete(key);
    const pending = asking.get(key);
    if (pending) return pending;
    const asked = query(name, type).then(
      (answer) => {
        asking.delete(key);
        const seconds = cacheSeconds(answer, type);
        if (seconds > 0) {
          kept.set(key, { answer, until: now() + seconds * 1000 });
          if (kept.size > MAX_ENTRIES) kept.delete(kept.keys().next().value!);
        }
        return answer;
      },
      (err: unknown) => {
        asking.delete(key);
        throw err;
      },
    );
    asking.set(key, asked);
    return asked;
  };

  /** The records of `type` in the answer, or the error Node's resolver would throw. */
  const records = async (name: string, type: number, label: string) => {
    const answer = await cached(name, type);
    const fail = (code: string) => Object.assign(new Error(`${label} ${code} ${name}`), { code, hostname: name });
    if (answer.rcode === RCODE.NXDOMAIN) throw fail("ENOTFOUND");
    if (answer.rcode !== RCODE.NOERROR) throw fail(RCODE_ERRORS[answer.rcode] ?? "EBADRESP");
    const found = answer.answers.filter((r) => r.type === type);
    if (found.length === 0) throw fail("ENODATA");
    return found;
  };

  const lookup: DnsLookup = {
    resolveMx: async (name) =>
      (await records(name, RRTYPE.MX, "queryMx")).map((r) => ({ priority: r.data.readUInt16BE(0), exchange: r.exchange ?? "" })),
    resolve4: async (name) =>
      (await records(name, RRTYPE.A, "queryA")).filter((r) => r.data.length === 4).map((r) => [...r.data].join(".")),
    resolve6: async (name) =>
      (await records(name, RRTYPE.AAAA, "queryAaaa")).filter((r) => r.data.length === 16).map((r) => ipv6Text(r.data)),
    resolveTxt: async (name) => (await records(name, RRTYPE.TXT, "queryTxt")).map((r) => characterStrings(r.data)),
  };

  return {
    query: cached,
    lookup,
    get size() {
      return kept.size;
    },
  };
}

/** RFC 1035 3.3.14: TXT RDATA is one or more <character-string>s (a length byte, then the bytes). */
function characterStrings(data: Buffer): string[] {
  const out: string[] = [];
  for (let pos = 0; pos < data.length;) {
    const len = data[pos];
    // byte strings as c-ares hands them to Node: one byte, one character
    out.push(data.toString("latin1", pos + 1, Math.min(data.length, pos + 1 + len)));
    pos += 1 + len;
  }
  return out;
}

/** RFC 5952 4: lowercase hex, no leading zeros, the longest run of two or more zero groups as "::" (the first of equal runs). */
export function ipv6Text(bytes: Buffer): string {
  return ipv6GroupsText(Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2)));
}
