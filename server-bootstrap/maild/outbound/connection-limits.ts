// How many SMTP connections the transport holds open at once: per recipient domain (so one big
// queue for one domain does not hammer its MX hosts, which would throttle or block us) and in
// total (sockets, memory). A connection over a limit waits in line; it is never refused, because
// the message is already ours and the queue would only try it again later.
//
// A slot is held for as long as its connection is open, busy or idle in the connection cache
// (connection-cache.ts). A waiter that only idle connections stand in the way of asks the cache,
// through `reclaim`, to close one of them, rather than wait for its idle time to run out.
import { gauge } from "../metrics";

const activeGauge = gauge("maild_outbound_connections", "Outbound SMTP connections currently open");
const waitingGauge = gauge("maild_outbound_connections_waiting", "Outbound SMTP connections waiting for a free slot");

export interface ConnectionLimits {
  perDomain: number;
  total: number;
}

/**
 * Called for a waiter that does not fit: `scope` "domain" when its domain is at perDomain (only a
 * connection of that domain can make room), "total" when all slots are taken (any connection
 * can). Returns true if it started closing an idle connection, whose release will follow. It must
 * not release a slot synchronously.
 */
export type Reclaim = (domain: string, scope: "domain" | "total") => boolean;

interface Waiter {
  domain: string;
  grant: () => void;
  /** a reclaim was started for this waiter since the last release */
  reclaiming: boolean;
}

/** Counting semaphore per domain plus one over all domains, with one FIFO line of waiters. */
export class ConnectionSlots {
  private readonly open = new Map<string, number>();
  private total = 0;
  private readonly line: Waiter[] = [];

  /** Read on every acquire and release, so a reloaded configuration applies at once. */
  constructor(
    private readonly limits: () => ConnectionLimits,
    private readonly reclaim?: Reclaim,
  ) {}

  /**
   * Resolves with a release function once a slot for `domain` is free; release is idempotent.
   * An abort while waiting leaves the line and rejects with the signal's reason.
   */
  acquire(domain: string, signal?: AbortSignal): Promise<() => void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason as Error);
      const onAbort = () => {
        const i = this.line.indexOf(waiter);
        if (i === -1) return;
        this.line.splice(i, 1);
        waitingGauge.dec();
        reject(signal!.reason as Error);
      };
      const waiter: Waiter = {
        domain,
        reclaiming: false,
        grant: () => {
          signal?.removeEventListener("abort", onAbort);
          this.take(domain);
          let released = false;
          resolve(() => {
            if (released) return;
            released = true;
            this.give(domain);
          });
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.line.push(waiter);
      waitingGauge.inc();
      this.admit();
    });
  }

  /** Looks at the line again: a connection that went idle may now be reclaimed for a waiter. */
  recheck(): void {
    this.admit();
  }

  /** Open connections, for one domain or in total. */
  active(domain?: string): number {
    return domain === undefined ? this.total : (this.open.get(domain) ?? 0);
  }

  /** Connections waiting for a slot. */
  get waiting(): number {
    return this.line.length;
  }

  private take(domain: string): void {
    this.open.set(domain, (this.open.get(domain) ?? 0) + 1);
    this.total++;
    activeGauge.inc();
  }

  private give(domain: string): void {
    const n = this.open.get(domain) ?? 0;
    if (n <= 1) this.open.delete(domain);
    else this.open.set(domain, n - 1);
    this.total--;
    activeGauge.dec();
    // a slot came free: whoever still does not fit may ask for room again
    for (const w of this.line) w.reclaiming = false;
    this.admit();
  }

  // First come, first served, except that a waiter whose domain is at its own limit does not
  // hold up waiters for other domains behind it. Each waiter that does not fit may have one idle
  // connection closed for it per release, so no more are closed than there are waiters.
  private admit(): void {
    const { perDomain, total } = this.limits();
    for (let i = 0; i < this.line.length;) {
      const w = this.line[i];
      const domainFull = (this.open.get(w.domain) ?? 0) >= perDomain;
      const totalFull = this.total >= total;
      if (!domainFull && !totalFull) {
        this.line.splice(i, 1);
        waitingGauge.dec();
        w.grant();
        continue;
      }
      if (!w.reclaiming && this.reclaim?.(w.domain, domainFull ? "domain" : "total")) w.reclaiming = true;
      i++;
    }
  }
}
