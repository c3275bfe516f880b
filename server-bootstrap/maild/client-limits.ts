// Per-client limits on the SMTP listeners. Pure bookkeeping with an injectable clock.
import { isIPv6 } from "node:net";

/**
 * The unit a client is counted by: its IPv4 address, or the /64 of its IPv6 address. One host on
 * IPv6 usually holds a whole /64 (RFC 7421: the standard subnet prefix), so counting exact IPv6
 * addresses would let one client open as many connections as it likes.
 */
export function clientKey(ip: string): string {
  const addr = ip.startsWith("::ffff:") && !isIPv6(ip.slice(7)) ? ip.slice(7) : ip;
  if (!isIPv6(addr)) return addr;
  const full = expandIpv6(addr);
  return `${full.slice(0, 4).join(":")}::/64`;
}

function expandIpv6(ip: string): string[] {
  const [head, tail] = ip.split("::");
  const h = head ? head.split(":") : [];
  const t = tail !== undefined && tail !== "" ? tail.split(":") : [];
  const fill = tail === undefined ? [] : new Array(8 - h.length - t.length).fill("0");
  return [...h, ...fill, ...t].map((g) => g.toLowerCase().padStart(4, "0"));
}

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
