// DNS lookups for `mailstack check`: every query goes to the servers given with --resolver (else
// the system's), each one bounded by the probe timeout, and every outcome is a value: a record
// set (possibly empty) or the resolver's error code. Nothing here throws or hangs.
import { promises as dns, type CaaRecord, type MxRecord, type TlsaRecord } from "node:dns";
import { isIP } from "node:net";
import { reverseName } from "../../components/records/address";
import { formatIpPort, parseIpPort } from "../../components/shared/ip-port";

export type DnsAnswer<T> = { ok: true; records: T[] } | { ok: false; error: string };

/** "No such name" and "no such record" are answers: an empty record set (RFC 2308). */
const EMPTY_ANSWERS = new Set(["ENOTFOUND", "ENODATA"]);

export class DnsLookups {
  private readonly resolver: dns.Resolver;
  private readonly cache = new Map<string, Promise<DnsAnswer<unknown>>>();

  /**
   * @param servers IP literals with optional port (`198.51.100.53`, `198.51.100.53:5353`,
   *   `[2001:db8::53]:5353`); empty: /etc/resolv.conf
   */
  constructor(
    servers: string[],
    private readonly timeoutMs: number,
  ) {
    // c-ares retries with a doubling timeout; two tries fit in the budget, the race below ends the rest.
    this.resolver = new dns.Resolver({ timeout: Math.max(100, Math.floor(timeoutMs / 3)), tries: 2 });
    if (servers.length > 0) this.resolver.setServers(servers);
  }

  a(name: string): Promise<DnsAnswer<string>> {
    return this.ask(`A ${name}`, () => this.resolver.resolve4(name));
  }
  aaaa(name: string): Promise<DnsAnswer<string>> {
    return this.ask(`AAAA ${name}`, () => this.resolver.resolve6(name));
  }
  mx(name: string): Promise<DnsAnswer<MxRecord>> {
    return this.ask(`MX ${name}`, () => this.resolver.resolveMx(name));
  }
  /** Each TXT record as the concatenation of its strings (RFC 7208 3.3, RFC 6376 3.6.2.2). */
  txt(name: string): Promise<DnsAnswer<string>> {
    return this.ask(`TXT ${name}`, async () => (await this.resolver.resolveTxt(name)).map((chunks) => chunks.join("")));
  }
  caa(name: string): Promise<DnsAnswer<CaaRecord>> {
    return this.ask(`CAA ${name}`, () => this.resolver.resolveCaa(name));
  }
  tlsa(name: string): Promise<DnsAnswer<TlsaRecord>> {
    return this.ask(`TLSA ${name}`, () => this.resolver.resolveTlsa(name));
  }
  /** PTR names of an address, lowercase without trailing dot. */
  ptr(address: string): Promise<DnsAnswer<string>> {
    return this.ask(`PTR ${address}`, async () =>
      (await this.resolver.resolvePtr(reverseName(address))).map((n) => n.toLowerCase().replace(/\.$/, "")),
    );
  }
  /** A or AAAA, by the family of `address`. */
  addressesLike(address: string, name: string): Promise<DnsAnswer<string>> {
    return isIP(address) === 6 ? this.aaaa(name) : this.a(name);
  }

  /**
   * The resolver mailauth's SPF evaluator calls: `dns.promises.resolve` semantics, errors with
   * their DNS code (it tells "no such record" from a failure by `code`).
   */
  readonly resolve = (name: string, rrtype: string): Promise<unknown> =>
    this.bounded(this.resolver.resolve(name, rrtype as "TXT"), `${rrtype} ${name}`);

  private ask<T>(key: string, query: () => Promise<T[]>): Promise<DnsAnswer<T>> {
    const cacheKey = key.toLowerCase();
    const known = this.cache.get(cacheKey);
    if (known) return known as Promise<DnsAnswer<T>>;
    const answer = this.bounded(query(), key).then(
      (records): DnsAnswer<T> => ({ ok: true, records }),
      (err: NodeJS.ErrnoException): DnsAnswer<T> =>
        EMPTY_ANSWERS.has(err.code ?? "") ? { ok: true, records: [] } : { ok: false, error: err.code ?? err.message },
    );
    this.cache.set(cacheKey, answer);
    return answer;
  }

  private bounded<T>(query: Promise<T>, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        const err: NodeJS.ErrnoException = new Error(`${what}: no answer within ${this.timeoutMs} ms`);
        err.code = "ETIMEOUT";
        reject(err);
      }, this.timeoutMs);
      query.then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(timer);
          reject(e);
        },
      );
    });
  }
}

/** Words for a failed lookup, e.g. `TXT _dmarc.example.org: ETIMEOUT`. */
export function lookupFailure(what: string, answer: { ok: false; error: string }): string {
  return `${what}: lookup failed (${answer.error})`;
}

/**
 * `--resolver` values: an IPv4 or IPv6 literal with an optional port, in the forms
 * `dns.Resolver#setServers` takes. Returns undefined when `text` is not one.
 */
export function parseResolverAddress(text: string): string | undefined {
  const parsed = parseIpPort(text);
  return parsed && formatIpPort(parsed);
}
