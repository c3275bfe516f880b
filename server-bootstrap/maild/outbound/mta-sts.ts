// MTA-STS on the sending side (RFC 8461): discover a recipient domain's policy, fetch it over
// HTTPS, keep it for its max_age in memory and on disk, and say which MX hosts it allows.
// Parsing and MX matching are mailauth's (`mailauth/lib/mta-sts`); the fetch is ours
// (components/shared/mta-sts-fetch.ts), because mailauth's cannot be given a trust store (test
// CAs) or our resolver, and RFC 8461 3.3 is strict about it: HTTPS with a valid certificate for
// mta-sts.<domain>, HTTP 200 only, no redirects, media type text/plain, a size limit and a time limit.
import type { LookupAddress } from "node:dns";
import { readdir, readFile, unlink } from "node:fs/promises";
import type { LookupFunction } from "node:net";
import { join } from "node:path";
import type * as MailauthMtaSts from "mailauth/lib/mta-sts";
import { writeFileAtomic } from "./atomic-file";
import { certificateResult } from "./tls-report";
import { fetchMtaStsPolicy } from "../../../components/shared/mta-sts-fetch";

// mailauth's MTA-STS module brings all of mailauth's shared tools with it (libmime and its
// charset tables, tldts's public suffix list, joi): about 2 MiB of maild's heap and 0.5 MiB of the
// bundle's text, for a parser only outbound delivery needs. It is loaded at the first policy
// lookup instead of at start (maild-memory.bench.ts measures what that saves).
let mailauthMtaSts: typeof MailauthMtaSts | undefined;
function mtaSts(): typeof MailauthMtaSts {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  mailauthMtaSts ??= require("mailauth/lib/mta-sts") as typeof MailauthMtaSts;
  return mailauthMtaSts;
}

/** RFC 8461 3.3: "senders SHOULD ... impose a timeout"; one minute is its example. */
const MAX_FETCH_MS = 60_000;
/** After a failed fetch, the same policy id is not fetched again for this long (load on a broken host). */
const FETCH_RETRY_MS = 5 * 60_000;

export type StsFailureType = "sts-policy-fetch-error" | "sts-policy-invalid" | "sts-webpki-invalid";

/** A fetch that failed, with the RFC 8460 4.3.2.2 result type that describes it. */
export class PolicyFetchError extends Error {
  constructor(
    readonly result: StsFailureType,
    message: string,
  ) {
    super(message);
    this.name = "PolicyFetchError";
  }
}

export interface StsPolicy {
  /** the id of the TXT record the policy was fetched for (RFC 8461 3.1) */
  id: string;
  mode: "enforce" | "testing" | "none";
  /** mx patterns, lowercase; "*.example.org" matches one left-most label */
  mx: string[];
  /** seconds */
  maxAge: number;
  /** the policy file as served, for TLSRPT's policy-string (RFC 8460 4.4) */
  text: string;
  /** ms since the epoch */
  fetchedAt: number;
}

export function policyExpires(p: StsPolicy): number {
  return p.fetchedAt + p.maxAge * 1000;
}

/** The policy's lines as TLSRPT's policy-string wants them (RFC 8460 4.4). */
export function policyLines(p: StsPolicy): string[] {
  return p.text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "");
}

/** RFC 8461 4.1: does the policy allow this MX host (exact name, or "*." plus one label)? */
export function mxAllowed(p: StsPolicy, mxHost: string): boolean {
  return mtaSts().validateMx(mxHost, { mode: p.mode, mx: p.mx }).valid;
}

/** What the transport gets for a domain: the policy to apply (if any) and a failure to report. */
export interface StsLookup {
  policy?: StsPolicy;
  failure?: { result: StsFailureType; reason: string };
}

export interface FetchOptions {
  /** PEM certificates trusted for the policy host (RFC 8461 3.3: Web PKI) */
  ca: string[];
  timeoutMs: number;
  /** resolves mta-sts.<domain> (through the configured resolvers, not the system's) */
  lookup: LookupFunction;
  /** 443 except in tests */
  port?: number;
}

/** Fetches the domain's policy as a sender must (components/shared/mta-sts-fetch.ts); rejects with PolicyFetchError. */
export async function fetchPolicyText(domain: string, opts: FetchOptions): Promise<string> {
  const r = await fetchMtaStsPolicy(domain, { ...opts, timeoutMs: Math.min(opts.timeoutMs, MAX_FETCH_MS), verify: true });
  const fail = (result: StsFailureType, message: string) => new PolicyFetchError(result, `${r.url}: ${message}`);
  // RFC 8460 4.3.2.2: a policy host that cannot be authenticated is sts-webpki-invalid.
  if (r.error) throw fail(certificateResult(r.error.code) ? "sts-webpki-invalid" : "sts-policy-fetch-error", r.error.message);
  // RFC 8461 3.3: only 200 is a policy; a redirect is not followed.
  if (r.status !== 200) throw fail("sts-policy-fetch-error", `HTTP status ${r.status}, not 200`);
  const type = (r.contentType ?? "").split(";")[0].trim().toLowerCase();
  if (type !== "text/plain") throw fail("sts-policy-fetch-error", `Content-Type ${JSON.stringify(r.contentType ?? "")}, not text/plain`);
  return r.body ?? "";
}

/** A LookupFunction over our resolver: AAAA and A as enabled (as the SMTP connections use). */
export function lookupVia(
  resolve6: (n: string) => Promise<string[]>,
  resolve4: (n: string) => Promise<string[]>,
  families: { ipv6: boolean; ipv4: boolean },
): LookupFunction {
  return ((
    hostname: string,
    options: { all?: boolean },
    callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ) => {
    const get = (on: boolean, fn: (n: string) => Promise<string[]>) =>
      on ? fn(hostname).catch(() => [] as string[]) : Promise.resolve([] as string[]);
    void Promise.all([get(families.ipv6, resolve6), get(families.ipv4, resolve4)]).then(([v6, v4]) => {
      const all: LookupAddress[] = [...v6.map((address) => ({ address, family: 6 })), ...v4.map((address) => ({ address, family: 4 }))];
      if (all.length === 0) {
        callback(Object.assign(new Error(`${hostname}: no address records`), { code: "ENOTFOUND" }), options?.all ? [] : "", 0);
      } else if (options?.all) callback(null, all);
      else callback(null, all[0].address, all[0].family);
    });
  }) as LookupFunction;
}

// Policy file names come from domain names; only plain LDH names become file names.
const SAFE_DOMAIN = /^(?!.*\.\.)[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/;

function fromJson(domain: string, raw: unknown): StsPolicy | undefined {
  const p = raw as Partial<StsPolicy> & { domain?: string };
  if (!p || typeof p !== "object" || p.domain !== domain) return undefined;
  if (typeof p.id !== "string" || typeof p.text !== "string" || typeof p.maxAge !== "number" || typeof p.fetchedAt !== "number")
    return undefined;
  if (p.mode !== "enforce" && p.mode !== "testing" && p.mode !== "none") return undefined;
  if (!Array.isArray(p.mx) || !p.mx.every((m) => typeof m === "string")) return undefined;
  return { id: p.id, mode: p.mode, mx: p.mx, maxAge: p.maxAge, text: p.text, fetchedAt: p.fetchedAt };
}

export interface MtaStsOptions {
  /** directory of the on-disk cache: <dataDir>/queue/mta-sts */
  dir: () => string;
  resolveTxt: (name: string) => Promise<string[][]>;
  fetch: (domain: string) => Promise<string>;
  now?: () => number;
  /** told about cache files that could not be written or read */
  onCacheError?: (err: Error) => void;
  /** domains remembered in memory (policy, or the lack of one), and policies kept on disk; default 10 000 */
  maxDomains?: number;
  /** how often the disk cache is swept of expired policies; default hourly */
  sweepIntervalMs?: number;
}

const DEFAULT_MAX_DOMAINS = 10_000;
const DEFAULT_SWEEP_INTERVAL_MS = 3600_000;

/** A Map that forgets its least recently used keys beyond `max`: every get or set makes a key the newest. */
export class LruMap<K, V> {
  private readonly map = new Map<K, V>();
  constructor(private readonly max: number) {}
  has(key: K): boolean {
    return this.map.has(key);
  }
  get(key: K): V | undefined {
    if (!this.map.has(key)) return undefined;
    const v = this.map.get(key) as V;
    this.map.delete(key);
    this.map.set(key, v);
    return v;
  }
  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    while (this.map.size > this.max) this.map.delete(this.map.keys().next().value as K);
  }
  delete(key: K): void {
    this.map.delete(key);
  }
  get size(): number {
    return this.map.size;
  }
}

/**
 * Policies per domain, following RFC 8461 5.1 (policy application control flow) and 3.3/10.2
 * (caching):
 * - the TXT record `_mta-sts.<domain>` names the current policy id;
 * - a cached, unexpired policy with that id is used without a fetch;
 * - a new id (or no usable cache) means a fetch; a fetched policy is cached for max_age;
 * - when the TXT record is missing or its lookup fails, or the fetch fails, an unexpired cached
 *   policy still applies (this is what makes MTA-STS resist a downgrade by an attacker who can
 *   block DNS or HTTPS); without one the domain is treated as having no policy (RFC 8461 5:
 *   senders fail open when no policy was ever seen).
 */
export class MtaStsPolicies {
  // Bounded: a sender can be made to look up any number of domains (bounces, users' mail), so
  // memory keeps the most recently used ones and the disk only policies still in force.
  private readonly memory: LruMap<string, StsPolicy | null>;
  private readonly failedFetch: LruMap<string, { id: string; until: number; result: StsFailureType; reason: string }>;
  private readonly now: () => number;
  private readonly maxDomains: number;
  private lastSweep = 0;
  private sweeping?: Promise<void>;

  constructor(private readonly opts: MtaStsOptions) {
    this.now = opts.now ?? Date.now;
    this.maxDomains = opts.maxDomains ?? DEFAULT_MAX_DOMAINS;
    this.memory = new LruMap(this.maxDomains);
    this.failedFetch = new LruMap(this.maxDomains);
  }

  async lookup(domain: string): Promise<StsLookup> {
    const now = this.now();
    if (now - this.lastSweep >= (this.opts.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS)) {
      this.lastSweep = now;
      this.sweeping = this.sweep().catch((err: Error) => this.opts.onCacheError?.(err));
    }
    const cached = await this.cached(domain);
    const valid = cached !== undefined && policyExpires(cached) > now ? cached : undefined;

    let id: string | false;
    try {
      id = await mtaSts().resolvePolicy(domain, { resolver: (name: string) => this.opts.resolveTxt(name) });
    } catch {
      // A temporary DNS failure, or several STSv1 TXT records (RFC 8461 3.1: no policy).
      return valid ? { policy: valid } : {};
    }
    if (id === false) {
      if (valid) return { policy: valid };
      if (cached) await this.forget(domain);
      return {};
    }
    if (valid && valid.id === id) return { policy: valid };

    const failed = this.failedFetch.get(domain);
    if (failed && failed.id === id && failed.until > now) {
      return { ...(valid ? { policy: valid } : {}), failure: { result: failed.result, reason: failed.reason } };
    }

    let text: string;
    let parsed: ReturnType<typeof MailauthMtaSts.parsePolicy>;
    try {
      text = await this.opts.fetch(domain);
      try {
        parsed = mtaSts().parsePolicy(text);
      } catch (err) {
        throw new PolicyFetchError("sts-policy-invalid", `policy of ${domain}: ${(err as Error).message}`);
      }
    } catch (err) {
      const result = err instanceof PolicyFetchError ? err.result : "sts-policy-fetch-error";
      const reason = (err as Error).message;
      this.failedFetch.set(domain, { id, until: now + FETCH_RETRY_MS, result, reason });
      return { ...(valid ? { policy: valid } : {}), failure: { result, reason } };
    }
    this.failedFetch.delete(domain);
    const policy: StsPolicy = {
      id,
      mode: parsed.mode,
      mx: (parsed.mx ?? []).map((m) => m.toLowerCase()),
      maxAge: parsed.maxAge ?? 0,
      text,
      fetchedAt: now,
    };
    await this.store(domain, policy);
    return { policy };
  }

  /**
   * Deletes cached policy files whose max_age has run out (RFC 8461 3.3: an expired policy is not
   * used again, a fresh fetch replaces it) and, beyond maxDomains files, those that expire first.
   */
  async sweep(): Promise<void> {
    const dir = this.opts.dir();
    const now = this.now();
    const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return [] as string[];
      throw err;
    });
    const kept: { file: string; expires: number }[] = [];
    for (const name of names) {
      if (!name.endsWith(".json")) continue;
      const file = join(dir, name);
      let policy: StsPolicy | undefined;
      try {
        policy = fromJson(name.slice(0, -5), JSON.parse(await readFile(file, "utf8")));
      } catch {
        policy = undefined;
      }
      if (policy === undefined || policyExpires(policy) <= now) await unlink(file).catch(() => undefined);
      else kept.push({ file, expires: policyExpires(policy) });
    }
    if (kept.length > this.maxDomains) {
      kept.sort((a, b) => a.expires - b.expires);
      for (const k of kept.slice(0, kept.length - this.maxDomains)) await unlink(k.file).catch(() => undefined);
    }
  }

  /** Resolves when a sweep started by lookup has ended (tests). */
  async swept(): Promise<void> {
    await this.sweeping;
  }

  private file(domain: string): string | undefined {
    return SAFE_DOMAIN.test(domain) ? join(this.opts.dir(), `${domain}.json`) : undefined;
  }

  private async cached(domain: string): Promise<StsPolicy | undefined> {
    if (this.memory.has(domain)) return this.memory.get(domain) ?? undefined;
    const file = this.file(domain);
    let policy: StsPolicy | undefined;
    if (file) {
      try {
        policy = fromJson(domain, JSON.parse(await readFile(file, "utf8")));
        if (!policy) this.opts.onCacheError?.(new Error(`${file}: not a cached MTA-STS policy; ignored`));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") this.opts.onCacheError?.(err as Error);
      }
    }
    this.memory.set(domain, policy ?? null);
    return policy;
  }

  private async store(domain: string, policy: StsPolicy): Promise<void> {
    this.memory.set(domain, policy);
    const file = this.file(domain);
    if (!file) return;
    try {
      await writeFileAtomic(
        file,
        JSON.stringify({ domain, ...policy, expires: new Date(policyExpires(policy)).toISOString() }, null, 1) + "\n",
      );
    } catch (err) {
      this.opts.onCacheError?.(err as Error);
    }
  }

  private async forget(domain: string): Promise<void> {
    this.memory.set(domain, null);
    const file = this.file(domain);
    if (file) await unlink(file).catch(() => undefined);
  }
}
