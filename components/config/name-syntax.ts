// Syntax of the names stack config holds: domain names, email addresses, IP addresses and CIDRs.
// Pure functions returning the normalised value or the reason it is refused.
import { domainToASCII, domainToUnicode } from "node:url";
import { isIPv4, isIPv6 } from "node:net";
import { canonicalIpv6 } from "../records/address";
import { DOT_ATOM, MAX_LOCAL_PART_OCTETS } from "../shared/mail-address";

export type Checked<T> = { ok: true; value: T } | { ok: false; reason: string };

const ok = <T>(value: T): Checked<T> => ({ ok: true, value });
const bad = <T>(reason: string): Checked<T> => ({ ok: false, reason });

export interface DomainOptions {
  /**
   * Allow `_` in labels. Host names may not have it (RFC 1123 2.1), but DNS names in general may
   * (RFC 2181 11), and SPF includes such as `_spf.google.com` use it.
   */
  underscore?: boolean;
}

/**
 * Lowercases, strips one trailing dot and converts an IDN to A-labels, then checks RFC 1123 host
 * name syntax: labels of letters, digits and hyphens, no hyphen at either end, at most 63 octets each
 * and 253 in all (RFC 1035 2.3.4), at least two labels, and a TLD that is not all digits
 * (RFC 1123 2.1: so a name can't be mistaken for an IPv4 address).
 */
export function normaliseDomain(input: string, options: DomainOptions = {}): Checked<string> {
  let name = input.trim();
  if (name.endsWith(".")) name = name.slice(0, -1);
  if (name === "") return bad("is empty");
  // WHATWG's domainToASCII percent-decodes and cuts at "/": refuse URL syntax before it sees it.
  const stray = [...name].find((c) => c.charCodeAt(0) < 0x80 && !/[A-Za-z0-9.\-_]/.test(c));
  if (stray !== undefined) {
    return bad(`contains ${JSON.stringify(stray)}; a domain name has only letters, digits, hyphens and dots`);
  }
  const ascii = domainToASCII(name);
  if (ascii === "") return bad("is not a valid internationalised domain name (IDNA conversion to A-labels failed)");
  if (ascii.length > 253) return bad(`is ${ascii.length} characters long; at most 253 are allowed (RFC 1035 2.3.4)`);
  const labels = ascii.split(".");
  if (labels.length < 2) return bad("needs at least two labels, e.g. example.org");
  const labelChars = options.underscore ? /^[a-z0-9_-]+$/ : /^[a-z0-9-]+$/;
  for (const label of labels) {
    if (label === "") return bad("has an empty label (two dots in a row or a leading dot)");
    if (label.length > 63) return bad(`label "${label}" is ${label.length} characters long; at most 63 are allowed (RFC 1035 2.3.4)`);
    if (!labelChars.test(label)) {
      const allowed = options.underscore ? "letters, digits, hyphens and underscores" : "letters, digits and hyphens";
      return bad(`label "${label}" may hold only ${allowed} (RFC 1123 2.1)`);
    }
    if (label.startsWith("-") || label.endsWith("-")) return bad(`label "${label}" starts or ends with a hyphen (RFC 1123 2.1)`);
    if (label.startsWith("xn--") && domainToUnicode(label).startsWith("xn--")) {
      return bad(`label "${label}" is not a valid A-label (RFC 5890 2.3.2.1)`);
    }
  }
  const tld = labels[labels.length - 1];
  if (/^[0-9]+$/.test(tld)) return bad(`its last label "${tld}" is all digits; an IP address is not a domain name`);
  return ok(ascii);
}

/** `name` equals `zone` or lies below it (both normalised). */
export function isAtOrBelow(name: string, zone: string): boolean {
  return name === zone || name.endsWith(`.${zone}`);
}

export interface Email {
  local: string;
  domain: string;
  /** local@domain with the domain normalised; the local part as written */
  address: string;
}

/** An address with an RFC 5322 dot-atom local part of at most 64 octets (RFC 5321 4.5.3.1.1). */
export function parseEmail(input: string): Checked<Email> {
  const text = input.trim();
  const at = text.lastIndexOf("@");
  if (at < 0) return bad("has no @; expected an address like someone@example.org");
  const local = text.slice(0, at);
  if (local === "") return bad("has an empty local part before the @");
  if (Buffer.byteLength(local) > MAX_LOCAL_PART_OCTETS)
    return bad(`local part is ${Buffer.byteLength(local)} octets long; at most ${MAX_LOCAL_PART_OCTETS} are allowed (RFC 5321 4.5.3.1.1)`);
  if (!DOT_ATOM.test(local)) {
    return bad(`local part "${local}" is not an RFC 5322 dot-atom (letters, digits and !#$%&'*+/=?^_\`{|}~- separated by single dots)`);
  }
  const domain = normaliseDomain(text.slice(at + 1));
  if (!domain.ok) return bad(`domain ${domain.reason}`);
  const address = `${local}@${domain.value}`;
  // RFC 5321 4.5.3.1.3: a path is at most 256 octets including the angle brackets.
  if (Buffer.byteLength(address) > 254) return bad("is longer than 254 octets (RFC 5321 4.5.3.1.3)");
  return ok({ local, domain: domain.value, address });
}

export type IpFamily = 4 | 6;

export interface CidrOptions {
  /** Which address family is required; either when absent. */
  family?: IpFamily;
  /** Accept a bare address (a /32 or /128). */
  bareAddress?: boolean;
}

/**
 * An IPv4 or IPv6 network in CIDR notation whose host bits are zero (a set host bit usually means
 * a typo in the prefix). Returns it lowercased.
 */
export function parseCidr(input: string, options: CidrOptions = {}): Checked<string> {
  const text = input.trim().toLowerCase();
  const slash = text.indexOf("/");
  const addr = slash < 0 ? text : text.slice(0, slash);
  const family: IpFamily | undefined = isIPv4(addr) ? 4 : isIPv6(addr) && !addr.includes("%") ? 6 : undefined;
  const want = options.family === 4 ? "an IPv4" : options.family === 6 ? "an IPv6" : "an IPv4 or IPv6";
  const form = options.bareAddress ? "address or CIDR" : "CIDR (address/prefix)";
  if (family === undefined) return bad(`is not ${want} ${form}`);
  if (options.family !== undefined && family !== options.family) return bad(`is not ${want} ${form}`);
  if (slash < 0) {
    return options.bareAddress ? ok(text) : bad(`has no prefix length; write ${text}/${family === 4 ? 32 : 128} for a single address`);
  }
  const prefixText = text.slice(slash + 1);
  const bits = family === 4 ? 32 : 128;
  if (!/^(0|[1-9][0-9]*)$/.test(prefixText) || Number(prefixText) > bits) {
    return bad(`prefix length "${prefixText}" is not an integer from 0 to ${bits}`);
  }
  const prefix = Number(prefixText);
  const value = family === 4 ? ipv4ToBigInt(addr) : ipv6ToBigInt(addr);
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  if ((value & hostMask) !== 0n) {
    const network = value & ~hostMask;
    const shown = family === 4 ? bigIntToIpv4(network) : bigIntToIpv6(network);
    return bad(`has host bits set; the network is ${shown}/${prefix}`);
  }
  return ok(text);
}

function ipv4ToBigInt(addr: string): bigint {
  return addr.split(".").reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
}

function bigIntToIpv4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join(".");
}

function ipv6ToBigInt(addr: string): bigint {
  let text = addr;
  // An embedded dotted quad (::ffff:192.0.2.1) stands for the last two groups.
  const lastColon = text.lastIndexOf(":");
  const tail = text.slice(lastColon + 1);
  if (tail.includes(".")) {
    const v4 = ipv4ToBigInt(tail);
    text = `${text.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head, rest] = text.split("::");
  const headGroups = head === "" ? [] : head.split(":");
  const restGroups = rest === undefined || rest === "" ? [] : rest.split(":");
  const zeros = rest === undefined ? 0 : 8 - headGroups.length - restGroups.length;
  const groups = [...headGroups, ...Array<string>(zeros).fill("0"), ...restGroups];
  return groups.reduce((acc, group) => (acc << 16n) | BigInt(parseInt(group, 16)), 0n);
}

// Shown in RFC 5952 form, the way the planner writes addresses.
function bigIntToIpv6(value: bigint): string {
  const groups = Array.from({ length: 8 }, (_, i) => ((value >> BigInt(112 - 16 * i)) & 0xffffn).toString(16));
  return canonicalIpv6(groups.join(":"));
}
