// A complete RFC 1035 master file for one zone, from planned records: what `mailstack plan
// --format zone` prints and what an authoritative server (BIND, Knot) loads.
import { caaContent } from "./caa";
import { srvPresentation } from "./srv";
import { tlsaContent } from "./tlsa";
import { parseCharacterStrings } from "./txt";
import type { CaaData, PlannedRecord, SrvData, TlsaData } from "./types";

export interface ZoneOptions {
  /** NS targets (RFC 1035 3.3.11). A name inside the zone needs its own A/AAAA (glue) records. */
  nameservers: string[];
  /** SOA RNAME: a mailbox `hostmaster@example.org` or its domain-name form `hostmaster.example.org`. */
  hostmaster: string;
  /** SOA SERIAL, 0..2^32-1 (RFC 1982 serial arithmetic). */
  serial: number;
  /** TTL for records planned with Cloudflare's "auto" (1) and for $TTL; default 300, what "auto" means. */
  ttl?: number;
}

/** SOA timers (RFC 1912 2.2 recommendations; the minimum doubles as negative-cache TTL, RFC 2308 4). */
const SOA_REFRESH = 7200;
const SOA_RETRY = 3600;
const SOA_EXPIRE = 1209600;
const SOA_MINIMUM = 300;
const DEFAULT_TTL = 300;

const TYPE_ORDER: PlannedRecord["type"][] = ["A", "AAAA", "MX", "TXT", "CAA", "SRV", "TLSA"];

/**
 * The zone file: `$ORIGIN` and `$TTL` (RFC 1035 5.1, RFC 2308 4), SOA and NS at the apex, then
 * every record with an absolute owner name, sorted by name (labels compared right to left, as in
 * RFC 4034 6.1), type and content, so the output is the same for the same records.
 */
export function renderZone(origin: string, records: PlannedRecord[], opts: ZoneOptions): string {
  const zone = origin.toLowerCase().replace(/\.$/, "");
  const ttl = opts.ttl ?? DEFAULT_TTL;
  if (!Number.isInteger(opts.serial) || opts.serial < 0 || opts.serial > 0xffffffff) {
    throw new Error(`zone ${zone}: serial ${opts.serial} is not an integer 0..4294967295 (RFC 1035 3.3.13)`);
  }
  if (opts.nameservers.length === 0) throw new Error(`zone ${zone}: at least one name server is required (RFC 1035 3.3.11)`);

  const keys = new Set<string>();
  for (const r of records) {
    if (r.name !== zone && !r.name.endsWith(`.${zone}`)) {
      throw new Error(`zone ${zone}: record "${r.key}" is named ${r.name}, which is outside the zone`);
    }
    if (keys.has(r.key)) throw new Error(`zone ${zone}: record "${r.key}" appears twice`);
    keys.add(r.key);
  }

  for (const ns of opts.nameservers) {
    const host = ns.toLowerCase().replace(/\.$/, "");
    const inZone = host === zone || host.endsWith(`.${zone}`);
    // RFC 1035 4.2.1 / RFC 1034 4.2.2: a name server inside its own zone needs glue addresses.
    if (inZone && !records.some((r) => r.name === host && (r.type === "A" || r.type === "AAAA"))) {
      throw new Error(
        `zone ${zone}: name server ${host} is inside the zone but has no A/AAAA record; use a name server outside the zone or plan its addresses`,
      );
    }
  }

  const lines = [
    `$ORIGIN ${zone}.`,
    `$TTL ${ttl}`,
    `${zone}. ${ttl} IN SOA ${absolute(opts.nameservers[0])} ${rname(opts.hostmaster)} ${opts.serial} ${SOA_REFRESH} ${SOA_RETRY} ${SOA_EXPIRE} ${SOA_MINIMUM}`,
    ...opts.nameservers.map((ns) => `${zone}. ${ttl} IN NS ${absolute(ns)}`),
  ];
  const rendered = records.map((r) => ({ r, rdata: rdata(r) }));
  rendered.sort(
    (a, b) =>
      compareNames(a.r.name, b.r.name) ||
      TYPE_ORDER.indexOf(a.r.type) - TYPE_ORDER.indexOf(b.r.type) ||
      (a.rdata < b.rdata ? -1 : a.rdata > b.rdata ? 1 : 0),
  );
  for (const { r, rdata } of rendered) {
    const recordTtl = r.ttl === 1 ? ttl : r.ttl;
    lines.push(`${r.name}. ${recordTtl} IN ${r.type} ${rdata} ; ${r.comment.replace(/[\r\n]/g, " ")}`);
  }
  return lines.join("\n") + "\n";
}

/** RDATA in presentation form (RFC 1035 5.1; RFC 2782 SRV; RFC 8659 4.1.1 CAA; RFC 6698 2.2 TLSA). */
function rdata(r: PlannedRecord): string {
  switch (r.type) {
    case "A":
    case "AAAA":
      return r.content;
    case "MX":
      if (r.priority === undefined) throw new Error(`record "${r.key}": MX without priority`);
      return `${r.priority} ${absolute(r.content)}`;
    case "TXT":
      // Fails loudly on content that is not quoted character-strings of <= 255 bytes.
      parseCharacterStrings(r.content);
      return r.content;
    case "CAA":
      return r.data ? caaContent(r.data as CaaData) : r.content;
    case "SRV":
      if (!r.data) throw new Error(`record "${r.key}": SRV without data`);
      return srvPresentation(r.data as SrvData);
    case "TLSA":
      return r.data ? tlsaContent(r.data as TlsaData) : r.content;
  }
}

function absolute(name: string): string {
  return `${name.toLowerCase().replace(/\.$/, "")}.`;
}

/** RFC 1035 8: the mailbox's local part is the first label; a dot inside it is escaped. */
function rname(hostmaster: string): string {
  const at = hostmaster.indexOf("@");
  if (at < 0) return absolute(hostmaster);
  const local = hostmaster.slice(0, at).replace(/\./g, "\\.");
  return `${local}.${absolute(hostmaster.slice(at + 1))}`;
}

function compareNames(a: string, b: string): number {
  const la = a.split(".").reverse();
  const lb = b.split(".").reverse();
  for (let i = 0; i < Math.min(la.length, lb.length); i++) {
    if (la[i] !== lb[i]) return la[i] < lb[i] ? -1 : 1;
  }
  return la.length - lb.length;
}
