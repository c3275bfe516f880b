// Per-client limits on the SMTP listeners (a client is clientKey of its address: client-key.ts).
// Pure bookkeeping with an injectable clock.

/** Concurrent connections per client (the caller passes clientKey of the address). */
export class ConnectionLimiter {
  private readonly open = new Map<string, number>();
  total = 0;

  constructor(private max: () => { perIp: number; total: number }) {}

  /** Records the connection and returns true, or returns the limit that refused it. */
  tryOpen(client: string): true | "per-ip" | "total" {
    const { perIp, total } = this.max();
    const n = this.open.get(client) ?? 0;
    if (this.total >= total) return "total";
    if (n >= perIp) return "per-ip";
    this.open.set(client, n + 1);
    this.total++;
    return true;
  }

  close(client: string): void {
    const n = this.open.get(client) ?? 0;
    if (n <= 1) this.open.delete(client);
    else this.open.set(client, n - 1);
    if (n > 0) this.total--;
  }
}

/**
 * Messages per client (or per user) per minute as a token bucket: `perMinute` tokens, refilled continuously,
 * so a client may burst up to the limit and then continues at the limit's rate.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private perMinute: () => number,
    private now: () => number = Date.now,
  ) {}

  take(ip: string): boolean {
    const cap = this.perMinute();
    const t = this.now();
    const b = this.buckets.get(ip) ?? { tokens: cap, at: t };
    b.tokens = Math.min(cap, b.tokens + ((t - b.at) * cap) / 60000);
    b.at = t;
    if (this.buckets.size > 100000) this.prune(t, cap);
    if (b.tokens < 1) {
      this.buckets.set(ip, b);
      return false;
    }
    b.tokens -= 1;
    this.buckets.set(ip, b);
    return true;
  }

  // Buckets that have refilled completely carry no state worth keeping.
  private prune(t: number, cap: number): void {
    for (const [ip, b] of this.buckets) if (b.tokens + ((t - b.at) * cap) / 60000 >= cap) this.buckets.delete(ip);
  }
}
