// Hetzner gives a server an IPv6 /64 and the server takes ::1 in it (MailHost): the network is
// what `--ipv6` takes, in plan and check alike.
import { canonicalIpv6 } from "../../components/records/address";

/** Accepts `2001:db8:1::` or `2001:db8:1::/64`; the host part must be empty (Hetzner's /64). */
export function normaliseV6Network(input: string): string {
  const [address, prefix] = input.split("/");
  if (prefix !== undefined && prefix !== "64") {
    throw new Error(`--ipv6: Hetzner assigns a /64; got /${prefix} in "${input}"`);
  }
  if (!/^[0-9a-f:]+$/i.test(address) || !address.endsWith("::") || address.split("::").length !== 2) {
    throw new Error(`--ipv6: "${input}" is not an IPv6 /64 network address like 2001:db8:1:: (the host is ::1)`);
  }
  const groups = address
    .slice(0, -2)
    .split(":")
    .filter((g) => g !== "");
  if (groups.length > 4 || groups.some((g) => g.length > 4)) {
    throw new Error(`--ipv6: "${input}" has more than a /64 prefix; give the network address, e.g. 2001:db8:1::`);
  }
  return address.toLowerCase();
}

/** The /64 network of an IPv6 address, as --ipv6 takes it. */
export function ipv6Network64(address: string): string {
  const full = canonicalIpv6(address)
    .split("::")
    .map((half) => (half === "" ? [] : half.split(":")));
  const groups =
    full.length === 1 ? full[0] : [...full[0], ...new Array<string>(8 - full[0].length - full[1].length).fill("0"), ...full[1]];
  return canonicalIpv6([...groups.slice(0, 4), "0", "0", "0", "0"].join(":"));
}
