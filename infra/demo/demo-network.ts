// The demo's local internet (infra/local-internet/netns.ts): four network namespaces on one bridge.
//   dns   knot, authoritative for every zone (the stand-in for Cloudflare and the reverse DNS)
//   ca    pebble, the ACME CA (the stand-in for Let's Encrypt)
//   box   sshd: the stand-in for the Hetzner server, deployed into over SSH
//   peer  Postfix with opendkim, opendmarc and postfix-mta-sts-resolver: the rest of the internet
//
// Hetzner gives a server an IPv6 /64 and the server takes `::1` in it (MailHost). The harness
// numbers hosts inside one shared /120, so the box is moved to a /64 of its own whose ::1 it
// holds, with on-link routes both ways: every address in the plan is an address the box really
// has, and mail the box sends leaves from the address SPF names.
import { mustRun, type LocalInternet, type NetHost } from "../local-internet/netns";

export interface DemoHosts {
  dns: NetHost;
  ca: NetHost;
  /** `ipv6` is the box's real address, `<ipv6Network>1` */
  box: NetHost;
  peer: NetHost;
}

export interface DemoNetwork {
  hosts: DemoHosts;
  /** the box's IPv6 /64 network address, e.g. `2001:db8:1:1::` (what Hetzner's primary IP holds) */
  boxIpv6Network: string;
}

/** A /64 per harness slot inside the harness's 2001:db8:1::/48, so concurrent local internets never collide. */
function boxIpv6NetworkFor(slot: number): string {
  return `2001:db8:1:${(slot + 1).toString(16)}::`;
}

/** The slot's shared /120 (every harness host and the root-side address are in it). */
function slotIpv6Prefix(internet: LocalInternet): string {
  const last = internet.localIpv6.split(":").pop()!;
  const base = parseInt(last, 16) & ~0xff;
  return `${internet.localIpv6.slice(0, internet.localIpv6.lastIndexOf(":") + 1)}${base.toString(16)}/120`;
}

/** A host of the local internet that also reaches the box's own /64 (on-link, over the bridge). */
export async function addDemoHost(internet: LocalInternet, name: string, boxIpv6Network: string): Promise<NetHost> {
  const host = await internet.addHost(name);
  await mustRun(["ip", "-n", host.ns, "-6", "route", "add", `${boxIpv6Network}/64`, "dev", "eth0"]);
  return host;
}

export async function buildDemoNetwork(internet: LocalInternet): Promise<DemoNetwork> {
  const network = boxIpv6NetworkFor(internet.slot);
  const dns = await addDemoHost(internet, "dns", network);
  const ca = await addDemoHost(internet, "ca", network);
  const rawBox = await internet.addHost("box");
  const peer = await addDemoHost(internet, "peer", network);

  const boxIpv6 = `${network}1`;
  await mustRun(["ip", "-n", rawBox.ns, "-6", "addr", "del", `${rawBox.ipv6}/120`, "dev", "eth0"]);
  await mustRun(["ip", "-n", rawBox.ns, "-6", "addr", "add", `${boxIpv6}/64`, "dev", "eth0", "nodad"]);
  await mustRun(["ip", "-n", rawBox.ns, "-6", "route", "add", slotIpv6Prefix(internet), "dev", "eth0"]);
  // The demo process itself (ACME client, SSH, IMAP and submission clients) reaches the box too.
  await mustRun(["ip", "-6", "route", "add", `${network}/64`, "dev", `${internet.prefix}r`]);

  return { hosts: { dns, ca, box: { ...rawBox, ipv6: boxIpv6 }, peer }, boxIpv6Network: network };
}
