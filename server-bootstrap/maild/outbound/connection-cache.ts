// Outbound SMTP connections kept open between mail transactions, so that the messages waiting
// for one destination do not each pay for a TCP connection, a greeting, EHLO and a TLS handshake.
// RFC 5321 3.3 and 4.1.4: a session may carry any number of transactions, each begun by MAIL once
// the one before has ended with the reply to its data, or was aborted by RSET.
//
// What may reuse a connection: an attempt for the same recipient domain, to the same MX host,
// under the same TLS policy (tls-policy.ts: the DANE records, the MTA-STS policy id and mode, or
// opportunistic) and the same local settings: the key (transport.ts connectionKey). So the TLS
// decision taken when the connection was opened, and counted once in the TLS report, holds for
// every message it carries.
//
// Bounds, as Postfix's connection cache has them (postconf(5),
// https://www.postfix.org/postconf.5.html):
//   - idleMs: an unused connection is closed after this long (smtp_connection_cache_time_limit,
//     default 2 s: "Do not specify larger values without permission from the remote sites");
//   - maxMessages: transactions per connection (smtp_connection_reuse_count_limit);
//   - maxAgeMs: no transaction begins on a connection older than this, counted from its connect
//     (smtp_connection_reuse_time_limit, default 300 s);
//   - the connection caps (connection-limits.ts) count idle connections as well as busy ones; an
//     idle one that stands in the way of a waiter is closed for it (`reclaim`).
// Whether a cached connection still works is for the transport to find out before it hands it a
// message (an RSET probe for one that waited idle).
import { counter, gauge } from "../metrics";
import { ConnectionSlots, type ConnectionLimits } from "./connection-limits";

const idleGauge = gauge("maild_outbound_connections_idle", "Outbound SMTP connections open and waiting for their next message");
const reuseCounter = counter(
  "maild_outbound_connection_reuses_total",
  "Outbound SMTP transactions on a connection opened for an earlier one",
);

export interface CacheLimits extends ConnectionLimits {
  /** 0: no connection is kept after its transaction */
  idleMs: number;
  maxMessages: number;
  maxAgeMs: number;
}

/** A connection the cache knows: busy with one transaction at a time, or idle between them. */
export interface CachedConnection<C> {
  readonly conn: C;
  readonly domain: string;
  readonly key: string;
  /** ms since the epoch: when its connect began */
  readonly openedAt: number;
  /** transactions begun on it (the transport counts them) */
  transactions: number;
}

interface Entry<C> extends CachedConnection<C> {
  release: () => void;
  state: "busy" | "idle" | "closing" | "gone";
  idleSince: number;
  timer?: NodeJS.Timeout;
}

/**
 * What `acquire` grants: an open connection for the key, or a slot to open a new one in. A
 * connection that waited idle (`wasIdle`) may have been closed by the server meanwhile; one
 * handed over from the transaction that just ended on it has not had the time.
 */
export type Lease<C> = { kind: "reuse"; connection: CachedConnection<C>; wasIdle: boolean } | { kind: "open"; release: () => void };

interface KeyWaiter<C> {
  key: string;
  done: boolean;
  resolve: (lease: Lease<C>) => void;
  abort: AbortController;
}

export interface ConnectionCacheOptions<C> {
  /** read at every decision, so a reloaded configuration applies at once */
  limits: () => CacheLimits;
  /** ends a connection (QUIT, then the socket) and resolves once it is closed; its slot is freed then */
  close: (conn: C) => Promise<void>;
  /** an idle connection should not keep the process alive (socket unref); called with false when taken again */
  setIdle?: (conn: C, idle: boolean) => void;
  now?: () => number;
}

export class ConnectionCache<C> {
  readonly slots: ConnectionSlots;
  /** idle connections by key, the most recently used last */
  private readonly idle = new Map<string, Entry<C>[]>();
  /** attempts waiting for a connection, by key, first come first served */
  private readonly waiters = new Map<string, KeyWaiter<C>[]>();
  private readonly closing = new Set<Promise<void>>();
  private stopped = false;
  private readonly now: () => number;

  constructor(private readonly opts: ConnectionCacheOptions<C>) {
    this.now = opts.now ?? Date.now;
    this.slots = new ConnectionSlots(opts.limits, (domain, scope) => this.reclaim(domain, scope));
  }

  /**
   * An idle connection for `key` if there is one; otherwise waits for whichever comes first: a
   * connection for `key` finishing its transaction (handed over directly), or a free slot for
   * `domain` to open a new one in.
   */
  acquire(domain: string, key: string): Promise<Lease<C>> {
    const idle = this.takeIdle(key);
    if (idle) return Promise.resolve({ kind: "reuse", connection: idle, wasIdle: true });
    return new Promise((resolve, reject) => {
      const waiter: KeyWaiter<C> = { key, done: false, resolve, abort: new AbortController() };
      const line = this.waiters.get(key);
      if (line) line.push(waiter);
      else this.waiters.set(key, [waiter]);
      this.slots.acquire(domain, waiter.abort.signal).then(
        (release) => {
          // handed a connection between the grant and this callback: the slot is not needed
          if (waiter.done) return release();
          waiter.done = true;
          this.dropWaiter(waiter);
          resolve({ kind: "open", release });
        },
        (err: unknown) => {
          if (!waiter.done) reject(err as Error);
        },
      );
    });
  }

  /** The idle connection for `key` used most recently (so that surplus ones reach their idle limit and close). */
  private takeIdle(key: string): CachedConnection<C> | undefined {
    const list = this.idle.get(key);
    while (list && list.length > 0) {
      const e = list.pop()!;
      if (list.length === 0) this.idle.delete(key);
      this.leaveIdle(e);
      if (this.now() - e.openedAt >= this.opts.limits().maxAgeMs) {
        this.retire(e);
        continue;
      }
      e.state = "busy";
      reuseCounter.inc();
      return e;
    }
    return undefined;
  }

  /** Registers a connection opened under an "open" lease; it is busy with its first transaction. */
  add(conn: C, domain: string, key: string, openedAt: number, release: () => void): CachedConnection<C> {
    const e: Entry<C> = { conn, domain, key, openedAt, transactions: 0, release, state: "busy", idleSince: 0 };
    return e;
  }

  /**
   * After a transaction: the connection goes to a waiter for its key, or waits idle for one, or
   * is closed (not `reusable`, a limit reached, caching off, or shutting down).
   */
  checkIn(c: CachedConnection<C>, reusable: boolean): void {
    const e = c as Entry<C>;
    if (e.state !== "busy") return;
    const limits = this.opts.limits();
    if (
      !reusable ||
      this.stopped ||
      limits.idleMs <= 0 ||
      e.transactions >= limits.maxMessages ||
      this.now() - e.openedAt >= limits.maxAgeMs
    ) {
      this.retire(e);
      return;
    }
    const waiter = this.waiters.get(e.key)?.[0];
    if (waiter) {
      waiter.done = true;
      this.dropWaiter(waiter);
      waiter.abort.abort(new Error("handed an open connection"));
      reuseCounter.inc();
      waiter.resolve({ kind: "reuse", connection: e, wasIdle: false });
      return;
    }
    e.state = "idle";
    e.idleSince = this.now();
    const list = this.idle.get(e.key) ?? [];
    list.push(e);
    this.idle.set(e.key, list);
    idleGauge.inc();
    const ttl = Math.max(0, Math.min(limits.idleMs, e.openedAt + limits.maxAgeMs - e.idleSince));
    e.timer = setTimeout(() => {
      e.timer = undefined;
      this.removeIdle(e);
      this.retire(e);
    }, ttl);
    e.timer.unref();
    this.opts.setIdle?.(e.conn, true);
    // a waiter for another key may have been held up by the slot this connection keeps
    this.slots.recheck();
  }

  /** Closes a connection that is of no further use (broken, refused a probe) and frees its slot once closed. */
  discard(c: CachedConnection<C>): Promise<void> {
    const e = c as Entry<C>;
    this.removeIdle(e);
    return this.retire(e);
  }

  /** The connection ended by itself (the server closed it, a timeout): an idle one is forgotten. */
  lost(c: CachedConnection<C>): void {
    const e = c as Entry<C>;
    if (e.state !== "idle") return;
    this.removeIdle(e);
    e.state = "gone";
    e.release();
  }

  /** Idle connections, for one key or in total. */
  idleCount(key?: string): number {
    if (key !== undefined) return this.idle.get(key)?.length ?? 0;
    let n = 0;
    for (const list of this.idle.values()) n += list.length;
    return n;
  }

  /** Shutdown: closes every idle connection; those still busy are closed when their transaction ends. */
  async close(): Promise<void> {
    this.stopped = true;
    for (const list of [...this.idle.values()]) for (const e of [...list]) this.discard(e);
    await Promise.all(this.closing);
  }

  private retire(e: Entry<C>): Promise<void> {
    if (e.state === "closing" || e.state === "gone") return Promise.resolve();
    e.state = "closing";
    const done = this.opts
      .close(e.conn)
      .catch(() => undefined)
      .then(() => {
        e.state = "gone";
        this.closing.delete(done);
        e.release();
      });
    this.closing.add(done);
    return done;
  }

  /** ConnectionSlots' reclaim: closes the idle connection unused longest among those that make room. */
  private reclaim(domain: string, scope: "domain" | "total"): boolean {
    let victim: Entry<C> | undefined;
    for (const list of this.idle.values()) {
      for (const e of list) {
        if (scope === "domain" && e.domain !== domain) continue;
        if (!victim || e.idleSince < victim.idleSince) victim = e;
      }
    }
    if (!victim) return false;
    this.removeIdle(victim);
    void this.retire(victim);
    return true;
  }

  private removeIdle(e: Entry<C>): void {
    if (e.state !== "idle") return;
    const list = this.idle.get(e.key);
    const i = list?.indexOf(e) ?? -1;
    if (list && i !== -1) {
      list.splice(i, 1);
      if (list.length === 0) this.idle.delete(e.key);
    }
    this.leaveIdle(e);
    e.state = "busy";
  }

  private leaveIdle(e: Entry<C>): void {
    clearTimeout(e.timer);
    e.timer = undefined;
    idleGauge.dec();
    this.opts.setIdle?.(e.conn, false);
  }

  private dropWaiter(w: KeyWaiter<C>): void {
    const line = this.waiters.get(w.key);
    const i = line?.indexOf(w) ?? -1;
    if (!line || i === -1) return;
    line.splice(i, 1);
    if (line.length === 0) this.waiters.delete(w.key);
  }
}
