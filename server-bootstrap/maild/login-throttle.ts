// The one defence against password guessing, for SMTP AUTH (submission-auth.ts) and IMAP (Dovecot
// asks through auth-policy-server.ts): one state, kept on disk across restarts.
//
// A client is an IPv4 address or an IPv6 /64 (client-key.ts); an account is a lowercased login.
// - A client that fails `maxFailuresPerIp` times within the window is blocked: its attempts are
//   refused without a password check until the block ends.
// - An account that fails `maxFailuresPerAccount` times within the window from clients that never
//   logged in to it (a guess spread over many addresses) is blocked for such clients.
// - Every block ends: `lockoutSeconds`, doubling with each further block of the same client or
//   account up to `lockoutMaxSeconds`; a quiet window and a cap later the doubling starts over.
// - A client that has logged in to an account before ("known") is never blocked from it: neither
//   its own failures elsewhere nor an attack on the account keep the owner's usual devices out.
//   Its failures on that account are still counted; past `maxFailuresPerIp` in the window, its
//   attempts are spaced `knownClientDelaySeconds` apart (delayed, never refused), which bounds
//   guessing by someone who shares the owner's address.
// Unknown accounts are counted like real ones, so the answers tell nobody which accounts exist.
// Memory is bounded: at most MAX_ENTRIES clients, accounts and known pairs each (the oldest go
// first), and at most MAX_KNOWN_PER_ACCOUNT known clients per account (the most recent stay).
import { readFileSync } from "node:fs";
import type { SubmissionConfig } from "./config";
import { clientKey } from "./client-key";
import { writeFileAtomic } from "./outbound/atomic-file";

const MAX_ENTRIES = 50_000;
const MAX_KNOWN_PER_ACCOUNT = 32;
/** A client that has not logged in to an account for this long is no longer known to it. */
const KNOWN_FOR_MS = 400 * 86_400_000;

interface Failures {
  /** ms since the epoch, within the window */
  failures: number[];
  blockedUntil: number;
  /** blocks so far; the next lasts lockoutSeconds * 2^blocks */
  blocks: number;
  lastBlockEnd: number;
}

interface KnownPair {
  failures: number[];
  /** the earliest time the next attempt may be checked, once the pair is over its budget */
  nextSlot: number;
}

export type LoginDecision =
  /** check the password, after `delayMs` */
  | { allow: true; delayMs: number }
  /** refuse without looking at the password */
  | { allow: false; retryAfterSeconds: number };

/** What is written to disk: every table, as plain JSON. */
interface Snapshot {
  version: 1;
  clients: Record<string, Failures>;
  accounts: Record<string, Failures>;
  pairs: Record<string, KnownPair>;
  known: Record<string, Record<string, number>>;
}

export class LoginThrottle {
  private readonly clients = new Map<string, Failures>();
  private readonly accounts = new Map<string, Failures>();
  /** `account client` -> failures of a known client on that account */
  private readonly pairs = new Map<string, KnownPair>();
  /** account -> client -> last successful login (ms), least recent first */
  private readonly known = new Map<string, Map<string, number>>();

  constructor(
    private readonly limits: () => SubmissionConfig,
    private readonly now: () => number = Date.now,
    /** called after every change of state (the daemon persists it) */
    private readonly changed: () => void = () => undefined,
  ) {}

  /** Whether (and when) a password for `login` from `ip` may be checked. Reserves the known client's slot. */
  check(login: string, ip: string): LoginDecision {
    const account = normalizeLogin(login);
    const client = clientKey(ip);
    const now = this.now();
    if (this.isKnown(account, client, now)) {
      const pair = this.pairs.get(pairKey(account, client));
      if (!pair) return { allow: true, delayMs: 0 };
      pair.failures = inWindow(pair.failures, now, this.windowMs());
      if (pair.failures.length < this.limits().maxFailuresPerIp) return { allow: true, delayMs: 0 };
      const slot = Math.max(now, pair.nextSlot);
      pair.nextSlot = slot + this.limits().knownClientDelaySeconds * 1000;
      this.changed();
      return { allow: true, delayMs: slot - now };
    }
    const blockedFor = Math.max(remaining(this.clients.get(client), now), remaining(this.accounts.get(account), now));
    if (blockedFor > 0) return { allow: false, retryAfterSeconds: Math.ceil(blockedFor / 1000) };
    return { allow: true, delayMs: 0 };
  }

  recordFailure(login: string, ip: string): void {
    const account = normalizeLogin(login);
    const client = clientKey(ip);
    const now = this.now();
    const l = this.limits();
    this.fail(this.clients, client, l.maxFailuresPerIp, now);
    if (this.isKnown(account, client, now)) {
      const key = pairKey(account, client);
      const pair = this.pairs.get(key) ?? { failures: [], nextSlot: 0 };
      pair.failures = [...inWindow(pair.failures, now, this.windowMs()), now];
      touch(this.pairs, key, pair);
    } else {
      this.fail(this.accounts, account, l.maxFailuresPerAccount, now);
    }
    this.changed();
  }

  /** `login` is a real account whose password was right: `ip` becomes known to it. */
  recordSuccess(login: string, ip: string): void {
    const account = normalizeLogin(login);
    const client = clientKey(ip);
    let clients = this.known.get(account);
    if (!clients) {
      clients = new Map();
      touch(this.known, account, clients);
    }
    clients.delete(client);
    clients.set(client, this.now());
    while (clients.size > MAX_KNOWN_PER_ACCOUNT) clients.delete(clients.keys().next().value as string);
    this.pairs.delete(pairKey(account, client));
    this.changed();
  }

  /** Forgets what can no longer matter. */
  sweep(): void {
    const now = this.now();
    const l = this.limits();
    const keep = (l.failureWindowSeconds + l.lockoutMaxSeconds) * 1000;
    for (const table of [this.clients, this.accounts]) {
      for (const [k, r] of table) {
        if (r.blockedUntil < now && now - Math.max(r.lastBlockEnd, r.failures[r.failures.length - 1] ?? 0) > keep) table.delete(k);
      }
    }
    for (const [k, p] of this.pairs) {
      if (now - Math.max(p.nextSlot, p.failures[p.failures.length - 1] ?? 0) > keep) this.pairs.delete(k);
    }
    for (const [account, clients] of this.known) {
      for (const [c, at] of clients) if (now - at > KNOWN_FOR_MS) clients.delete(c);
      if (clients.size === 0) this.known.delete(account);
    }
  }

  snapshot(): Snapshot {
    const obj = <T>(m: Map<string, T>) => Object.fromEntries(m);
    return {
      version: 1,
      clients: obj(this.clients),
      accounts: obj(this.accounts),
      pairs: obj(this.pairs),
      known: Object.fromEntries([...this.known].map(([a, m]) => [a, Object.fromEntries(m)])),
    };
  }

  /** Takes the state a snapshot recorded (at start); anything that does not parse is left out. */
  restore(raw: unknown): void {
    if (!isRecord(raw) || raw.version !== 1) throw new Error("not a version 1 login state");
    for (const [name, table] of [
      ["clients", this.clients],
      ["accounts", this.accounts],
    ] as const) {
      for (const [k, v] of Object.entries(isRecord(raw[name]) ? raw[name] : {})) {
        if (isRecord(v) && numbers(v.failures) && [v.blockedUntil, v.blocks, v.lastBlockEnd].every(Number.isFinite)) {
          table.set(k, {
            failures: v.failures,
            blockedUntil: v.blockedUntil as number,
            blocks: v.blocks as number,
            lastBlockEnd: v.lastBlockEnd as number,
          });
        }
      }
    }
    for (const [k, v] of Object.entries(isRecord(raw.pairs) ? raw.pairs : {})) {
      if (isRecord(v) && numbers(v.failures) && Number.isFinite(v.nextSlot))
        this.pairs.set(k, { failures: v.failures, nextSlot: v.nextSlot as number });
    }
    for (const [account, clients] of Object.entries(isRecord(raw.known) ? raw.known : {})) {
      if (!isRecord(clients)) continue;
      const entries = Object.entries(clients).filter((e): e is [string, number] => Number.isFinite(e[1]));
      if (entries.length > 0) this.known.set(account, new Map(entries.sort((a, b) => a[1] - b[1]).slice(-MAX_KNOWN_PER_ACCOUNT)));
    }
  }

  private isKnown(account: string, client: string, now: number): boolean {
    const at = this.known.get(account)?.get(client);
    return at !== undefined && now - at <= KNOWN_FOR_MS;
  }

  private windowMs(): number {
    return this.limits().failureWindowSeconds * 1000;
  }

  private fail(table: Map<string, Failures>, key: string, max: number, now: number): void {
    const l = this.limits();
    const windowMs = this.windowMs();
    const r = table.get(key) ?? { failures: [], blockedUntil: 0, blocks: 0, lastBlockEnd: 0 };
    r.failures = [...inWindow(r.failures, now, windowMs), now];
    touch(table, key, r);
    if (r.failures.length < max) return;
    // A block long ago (more than a window of quiet after it ended) does not count any more.
    if (r.lastBlockEnd > 0 && now - r.lastBlockEnd > windowMs + l.lockoutMaxSeconds * 1000) r.blocks = 0;
    const seconds = Math.min(l.lockoutSeconds * 2 ** r.blocks, l.lockoutMaxSeconds);
    r.blocks++;
    r.blockedUntil = now + seconds * 1000;
    r.lastBlockEnd = r.blockedUntil;
    r.failures = [];
  }
}

/**
 * Keeps the throttle's state in `path`: written atomically (atomic-file.ts) at most once a
 * second while it changes, and at `flush()` (shutdown); read once at start.
 */
export class LoginStateFile {
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly path: string,
    private readonly throttle: () => LoginThrottle,
    private readonly onError: (e: Error) => void,
  ) {}

  /** Restores the file's state into `throttle`; a missing file is a first start. */
  load(throttle: LoginThrottle): void {
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") this.onError(e as Error);
      return;
    }
    try {
      throttle.restore(JSON.parse(text));
    } catch (e) {
      this.onError(new Error(`${this.path}: ${(e as Error).message}; starting with no login history`));
    }
  }

  changed(): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.write();
    }, 1000).unref();
  }

  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
      await this.write();
    }
    await this.writing;
  }

  private write(): Promise<void> {
    const data = JSON.stringify(this.throttle().snapshot());
    this.writing = this.writing.then(() => writeFileAtomic(this.path, data).catch((e: Error) => this.onError(e)));
    return this.writing;
  }
}

function normalizeLogin(login: string): string {
  return login.trim().toLowerCase();
}

function pairKey(account: string, client: string): string {
  return `${account} ${client}`;
}

function inWindow(times: number[], now: number, windowMs: number): number[] {
  return times.filter((t) => now - t < windowMs);
}

function remaining(r: Failures | undefined, now: number): number {
  return r && r.blockedUntil > now ? r.blockedUntil - now : 0;
}

/** Sets `key` as the newest entry, dropping the oldest beyond MAX_ENTRIES. */
function touch<T>(table: Map<string, T>, key: string, value: T): void {
  table.delete(key);
  table.set(key, value);
  if (table.size > MAX_ENTRIES) table.delete(table.keys().next().value as string);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function numbers(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((n) => Number.isFinite(n));
}
