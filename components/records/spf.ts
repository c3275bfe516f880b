// SPF policies (RFC 7208) for the mail domain and for the mail host's HELO name.
import type { SpfSpec } from "../spec";
import { canonicalIpv4, canonicalIpv6 } from "./address";

/**
 * The domain's SPF policy: the server's own addresses as ip4/ip6 mechanisms (RFC 7208 5.6: no
 * DNS lookup, unlike `mx` or `a`), then the configured extra senders and includes (each include
 * costs lookups, RFC 7208 4.6.4), then the configured `all` (RFC 7208 5.1), `-all` by default.
 */
export function domainSpf(spf: SpfSpec, serverIpv4: string, serverIpv6: string): string {
  const terms = [
    "v=spf1",
    `ip4:${canonicalIpv4(serverIpv4)}`,
    `ip6:${canonicalIpv6(serverIpv6)}`,
    ...spf.ip4.map((range) => `ip4:${range}`),
    ...spf.ip6.map((range) => `ip6:${range.toLowerCase()}`),
    ...spf.include.map((inc) => `include:${inc.domain}`),
    spf.all,
  ];
  return terms.join(" ");
}

/**
 * SPF for the mail host's own name, checked against the HELO/EHLO identity (RFC 7208 2.3):
 * only the host itself may use it, and bounces (empty MAIL FROM) are checked here too.
 */
export function heloSpf(serverIpv4: string, serverIpv6: string): string {
  return `v=spf1 ip4:${canonicalIpv4(serverIpv4)} ip6:${canonicalIpv6(serverIpv6)} -all`;
}
