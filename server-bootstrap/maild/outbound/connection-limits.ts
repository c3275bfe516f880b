// How many SMTP connections the transport holds open at once: per recipient domain (so one big
// queue for one domain does not hammer its MX hosts, which would throttle or block us) and in
// total (sockets, memory). A connection over a limit waits in line; it is never refused, because
// the message is already ours and the queue would only try it again later.
import { gauge } from "../metrics";

const activeGauge = gauge("maild_outbound_connections", "Outbound SMTP connections currently open");
const waitingGauge = gauge("maild_outbound_connections_waiting", "Outbound SMTP connections waiting for a free slot");

export interface ConnectionLimits {
  perDomain: number;
  total: number;
}

interface Waiter {
  domain: string;
  grant: () => void;
}

/** Counting semaphore per domain plus one over all domains, with one FIFO line of waiters. */
export class ConnectionSlots {
  private readonly open = new Map<string, number>();
  private total = 0;
  private readonly line: Waiter[] = [];

  /** Read on every acquire and release, so a reloaded configuration applies at once. */
  constructor(private readonly limits: () => ConnectionLimits) {}

  /** Resolves with a release function once a slot for `domain` is free; release is idempotent. */
  acquire(domain: string): Promise<() => void> {
    return new Promise((resolve) => {
      const grant = () => {
        this.take(domain);
        let released = false;
        resolve(() => {
          if (released) return;
          released = true;
          this.give(domain);
        });
      };
      this.line.push({ domain, grant });
      waitingGauge.inc();
      this.admit();
    });
  }

  /** Open connections, for one domain or in total. */
  active(domain?: string): number {
    return domain === undefined ? this.total : (this.open.get(domain) ?? 0);
  }

  /** Connections waiting for a slot. */
  get waiting(): number {
    return this.line.length;
  }

  private fits(domain: string): boolean {
    const { perDomain, total } = this.limits();
    return this.total < total && (this.open.get(domain) ?? 0) < perDomain;
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
    this.admit();
  }

  // First come, first served, except that a waiter whose domain is at its own limit does not
  // hold up waiters for other domains behind it.
  private admit(): void {
    for (let i = 0; i < this.line.length;) {
      const w = this.line[i];
      if (this.fits(w.domain)) {
        this.line.splice(i, 1);
        waitingGauge.dec();
        w.grant();
      } else if (this.total >= this.limits().total) {
        return;
      } else i++;
    }
  }
}
