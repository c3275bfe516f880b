// The unit a client is counted by: an IPv4 address, or the /64 of an IPv6 address (RFC 4291 2.5.1:
// an interface identifier is 64 bits, so one host, or one home, holds a whole /64; rspamd's
// greylisting masks IPv6 to /64 too).
import { isIPv6 } from "node:net";

/** `198.51.100.4`, or `2001:0db8:0005:0006::/64`; an IPv4-mapped IPv6 address counts as its IPv4 address. */
export function clientKey(ip: string): string {
  const addr = ip.startsWith("::ffff:") && !isIPv6(ip.slice(7)) ? ip.slice(7) : ip;
  if (!isIPv6(addr)) return addr;
  const full = expandIpv6(addr);
  return `${full.slice(0, 4).join(":")}::/64`;
}

function expandIpv6(text: string): string[] {
  // a dotted IPv4 tail (RFC 4291 2.2 form 3) is two 16-bit groups
  const ip = text.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_m, a: string, b: string, c: string, d: string) =>
    [(+a << 8) | +b, (+c << 8) | +d].map((n) => n.toString(16)).join(":"),
  );
  const [head, tail] = ip.split("::");
  const h = head ? head.split(":") : [];
  const t = tail !== undefined && tail !== "" ? tail.split(":") : [];
  const fill = tail === undefined ? [] : new Array(8 - h.length - t.length).fill("0");
  return [...h, ...fill, ...t].map((g) => g.toLowerCase().padStart(4, "0"));
}
