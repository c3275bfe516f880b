// Canonical text forms of IP addresses, as Cloudflare returns them in A/AAAA content, and the
// reverse-lookup names for PTR records.
import { ipv6GroupsText } from "../shared/ipv6-text";

/** Dotted-quad IPv4 without leading zeros (RFC 1035 3.4.1 A RDATA). Throws on anything else. */
export function canonicalIpv4(address: string): string {
  return parseIpv4(address).join(".");
}

/**
 * RFC 5952 4: lowercase hex, no leading zeros in a group, the longest run (>= 2) of zero groups
 * compressed to "::" (the first run on a tie). Accepts any RFC 4291 2.2 text form.
 */
export function canonicalIpv6(address: string): string {
  return ipv6GroupsText(parseIpv6(address));
}

/**
 * The PTR owner name for an address, lowercase without trailing dot:
 * RFC 1035 3.5 (in-addr.arpa, octets reversed), RFC 3596 2.5 (ip6.arpa, nibbles reversed).
 */
export function reverseName(address: string): string {
  if (address.includes(":")) {
    const nibbles = parseIpv6(address)
      .map((g) => g.toString(16).padStart(4, "0"))
      .join("")
      .split("")
      .reverse();
    return `${nibbles.join(".")}.ip6.arpa`;
  }
  return `${parseIpv4(address).reverse().join(".")}.in-addr.arpa`;
}

function parseIpv4(address: string): number[] {
  const parts = address.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) {
    throw new Error(`"${address}" is not an IPv4 address (expected four decimal octets 0-255, e.g. 198.51.100.25)`);
  }
  return parts.map(Number);
}

function parseIpv6(address: string): number[] {
  const fail = (): never => {
    throw new Error(`"${address}" is not an IPv6 address (expected RFC 4291 text form, e.g. 2001:db8::1)`);
  };
  let text = address.toLowerCase();
  // RFC 4291 2.2 form 3: a trailing dotted-quad IPv4 stands for the last two groups.
  const lastColon = text.lastIndexOf(":");
  if (lastColon >= 0 && text.slice(lastColon + 1).includes(".")) {
    let octets: number[] = [];
    try {
      octets = parseIpv4(text.slice(lastColon + 1));
    } catch {
      fail();
    }
    const hi = ((octets[0] << 8) | octets[1]).toString(16);
    const lo = ((octets[2] << 8) | octets[3]).toString(16);
    text = `${text.slice(0, lastColon + 1)}${hi}:${lo}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) fail();
  const toGroups = (s: string): number[] =>
    s === "" ? [] : s.split(":").map((g) => (/^[0-9a-f]{1,4}$/.test(g) ? parseInt(g, 16) : fail()));
  const head = toGroups(halves[0]);
  const tail = halves.length === 2 ? toGroups(halves[1]) : [];
  const explicit = head.length + tail.length;
  if (halves.length === 2) {
    if (explicit > 7) fail();
    return [...head, ...new Array<number>(8 - explicit).fill(0), ...tail];
  }
  if (explicit !== 8) fail();
  return [...head, ...tail];
}
