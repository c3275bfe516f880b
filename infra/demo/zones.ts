// The DNS of the demo's local internet, as zone-file lines for knot (infra/local-internet/knot.ts):
// - the stack's zones exactly as the Pulumi program plans them (the same renderer as
//   `mailstack plan --format zone`), with the local name server in NS where Cloudflare's would be;
// - the reverse zones holding the PTRs the program sets through Hetzner (RFC 1035 3.5, RFC 3596 2.5);
// - the peer's domain: MX, SPF, DKIM and DMARC of the "rest of the internet";
// - the name server's own zone, so its NS name resolves (RFC 1034 4.2.2).
// Pure: the addresses come in, the lines go out.
import { renderZone } from "../../components/records/zone-file";
import { reverseName } from "../../components/records/address";
import { txtContent } from "../../components/records/txt";
import type { PlannedRecord, RecordType } from "../../components/records/types";

/** The local internet's one authoritative name server (knot), named outside every served zone. */
export const NAMESERVER = "ns.internet.test";
export const NAMESERVER_ZONE = "internet.test";

export interface KnotZone {
  origin: string;
  lines: string[];
}

export interface PeerDns {
  domain: string;
  /** the peer's MX host name (also its HELO name and PTR) */
  hostname: string;
  ipv4: string;
  ipv6: string;
  dkimSelector: string;
  /** base64 SPKI DER of the peer's RSA DKIM key (RFC 6376 3.6.1 p=) */
  dkimPublicKeyB64: string;
}

export interface DemoZonesInput {
  /** the stack's planned records by zone */
  planned: Record<string, PlannedRecord[]>;
  /** the PTRs the program plans (Hetzner Rdns) */
  ptr: { address: string; ptr: string }[];
  nameserver: { ipv4: string; ipv6: string };
  peer: PeerDns;
}

const TTL = 300;

/** Zone-file lines knot loads: the renderer's output without directives and comment-only lines. */
function recordLines(zoneText: string): string[] {
  return zoneText.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("$") && !l.startsWith(";"));
}

function apex(origin: string): string[] {
  return [
    `${origin}. ${TTL} IN SOA ${NAMESERVER}. hostmaster.${origin}. 1 7200 3600 1209600 300`,
    `${origin}. ${TTL} IN NS ${NAMESERVER}.`,
  ];
}

function record(name: string, type: RecordType, content: string, comment: string, extra: Partial<PlannedRecord> = {}): PlannedRecord {
  return { key: `${type} ${name} ${comment}`, name, type, content, ttl: 1, comment, ...extra };
}

/** The peer's domain: what any mail domain of the wider internet publishes. */
export function peerRecords(peer: PeerDns): PlannedRecord[] {
  return [
    record(peer.domain, "MX", peer.hostname, "the peer's MX", { priority: 10 }),
    record(peer.hostname, "A", peer.ipv4, "the peer's MX host"),
    record(peer.hostname, "AAAA", peer.ipv6, "the peer's MX host"),
    record(peer.domain, "TXT", txtContent(`v=spf1 ip4:${peer.ipv4} ip6:${peer.ipv6} -all`), "SPF (RFC 7208)"),
    record(
      `${peer.dkimSelector}._domainkey.${peer.domain}`,
      "TXT",
      txtContent(`v=DKIM1; k=rsa; p=${peer.dkimPublicKeyB64}`),
      "DKIM (RFC 6376)",
    ),
    record(`_dmarc.${peer.domain}`, "TXT", txtContent("v=DMARC1; p=reject"), "DMARC (RFC 7489)"),
  ];
}

/**
 * The reverse zone an address's PTR lives in: the /24 of an IPv4 address, the /64 of an IPv6
 * address (the delegation unit Hetzner and most providers use).
 */
export function reverseZone(address: string): string {
  const labels = reverseName(address).split(".");
  return labels.slice(address.includes(":") ? 16 : 1).join(".");
}

export function demoZones(input: DemoZonesInput): KnotZone[] {
  const zones: KnotZone[] = Object.entries(input.planned).map(([zone, records]) => ({
    origin: zone,
    lines: recordLines(renderZone(zone, records, { nameservers: [NAMESERVER], hostmaster: `hostmaster.${zone}`, serial: 1 })),
  }));
  zones.push({
    origin: input.peer.domain,
    lines: recordLines(
      renderZone(input.peer.domain, peerRecords(input.peer), {
        nameservers: [NAMESERVER],
        hostmaster: `hostmaster.${input.peer.domain}`,
        serial: 1,
      }),
    ),
  });
  zones.push({
    origin: NAMESERVER_ZONE,
    lines: [
      ...apex(NAMESERVER_ZONE),
      `${NAMESERVER}. ${TTL} IN A ${input.nameserver.ipv4}`,
      `${NAMESERVER}. ${TTL} IN AAAA ${input.nameserver.ipv6}`,
    ],
  });
  const ptrs = [
    ...input.ptr,
    { address: input.peer.ipv4, ptr: input.peer.hostname },
    { address: input.peer.ipv6, ptr: input.peer.hostname },
  ];
  const reverse = new Map<string, string[]>();
  for (const { address, ptr } of ptrs) {
    const origin = reverseZone(address);
    if (!reverse.has(origin)) reverse.set(origin, apex(origin));
    reverse.get(origin)!.push(`${reverseName(address)}. ${TTL} IN PTR ${ptr}.`);
  }
  for (const [origin, lines] of reverse) zones.push({ origin, lines });
  return zones;
}

/** How many records of each type the stack publishes (its planned zones, not the PTRs). */
export function countByType(planned: Record<string, PlannedRecord[]>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const records of Object.values(planned)) for (const r of records) counts[r.type] = (counts[r.type] ?? 0) + 1;
  return counts;
}
