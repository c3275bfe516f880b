// DNS wire format (RFC 1035 4.1): the one codec of the RFC 2136 updates and TSIG of ACME DNS-01
// (acme/rfc2136.ts, acme/tsig.ts) and of maild's DNSSEC-aware stub queries for DANE
// (server-bootstrap/maild/outbound/dns-ad.ts). Written here rather than taken from dns-packet
// 5.6.1: it cannot encode class NONE (RFC 2136 2.5.4; its classes.js maps only IN, CS, CH, HS and
// ANY, anything else to 0), has no TSIG RDATA codec, and does not bounds-check RDATA (an A record
// cut short by truncation decodes as "192.undefined.undefined.undefined"); bundled with esbuild it
// adds 31 KB minified where this codec and maild's query code take 3 KB.

export const TYPE_SOA = 6;
export const TYPE_TXT = 16;
export const CLASS_IN = 1;
/** RFC 2136 2.5.4: delete one RR from an RRset */
export const CLASS_NONE = 254;
export const OPCODE_UPDATE = 5;

/** Uncompressed wire form of a domain name; trailing dot optional; labels of 1-63 bytes (RFC 1035 2.3.4). */
export function encodeName(name: string): Buffer {
  const trimmed = name.replace(/\.$/, "");
  const parts: Buffer[] = [];
  if (trimmed.length > 0) {
    for (const label of trimmed.split(".")) {
      const bytes = Buffer.from(label, "utf8");
      if (bytes.length < 1 || bytes.length > 63)
        throw new Error(`DNS name ${JSON.stringify(name)}: label ${JSON.stringify(label)} must be 1 to 63 bytes`);
      parts.push(Buffer.from([bytes.length]), bytes);
    }
  }
  parts.push(Buffer.from([0]));
  const out = Buffer.concat(parts);
  if (out.length > 255) throw new Error(`DNS name ${JSON.stringify(name)} is longer than 255 bytes`);
  return out;
}

/**
 * Reads a possibly compressed name (RFC 1035 4.1.4) at `offset`: the name as written, with a
 * trailing dot ("." for the root), and the offset after it in the original stream.
 */
export function readName(buf: Buffer, offset: number): { name: string; next: number } {
  const labels: string[] = [];
  let pos = offset;
  let next = -1;
  // RFC 1035 4.1.4: a pointer goes to a prior occurrence; requiring each to go strictly backwards
  // means a loop of pointers cannot run forever.
  let limit = offset;
  for (;;) {
    if (pos >= buf.length) throw new Error("DNS message truncated inside a name");
    const len = buf[pos];
    if ((len & 0xc0) === 0xc0) {
      if (pos + 1 >= buf.length) throw new Error("DNS message truncated inside a name pointer");
      const target = ((len & 0x3f) << 8) | buf[pos + 1];
      if (next < 0) next = pos + 2;
      if (target >= limit) throw new Error("DNS name pointer does not point backwards");
      limit = target;
      pos = target;
      continue;
    }
    // RFC 6891 5: the 0x40 and 0x80 label types are not in use.
    if ((len & 0xc0) !== 0) throw new Error(`DNS label type 0x${len.toString(16)} is not supported`);
    if (len === 0) {
      if (next < 0) next = pos + 1;
      return { name: labels.length ? `${labels.join(".")}.` : ".", next };
    }
    if (pos + 1 + len > buf.length) throw new Error("DNS message truncated inside a label");
    labels.push(buf.toString("utf8", pos + 1, pos + 1 + len));
    pos += 1 + len;
  }
}

export interface WireRecord {
  name: string;
  type: number;
  class: number;
  ttl: number;
  rdata: Buffer;
}

/** The resource record at `offset` and the offset after it; undefined when the message ends inside its fixed part or RDATA. */
export function readRecord(buf: Buffer, offset: number): (WireRecord & { next: number }) | undefined {
  const { name, next } = readName(buf, offset);
  if (next + 10 > buf.length) return undefined;
  const start = next + 10;
  const end = start + buf.readUInt16BE(next + 8);
  if (end > buf.length) return undefined;
  return {
    name,
    type: buf.readUInt16BE(next),
    class: buf.readUInt16BE(next + 2),
    ttl: buf.readUInt32BE(next + 4),
    rdata: Buffer.from(buf.subarray(start, end)),
    next: end,
  };
}

export function skipQuestion(buf: Buffer, offset: number): number {
  const next = readName(buf, offset).next + 4;
  if (next > buf.length) throw new Error("DNS message truncated inside the question");
  return next;
}

export function skipRecord(buf: Buffer, offset: number): number {
  const r = readRecord(buf, offset);
  if (!r) throw new Error("DNS message truncated inside a record");
  return r.next;
}

/** TXT RDATA: one or more <character-string>s of at most 255 bytes (RFC 1035 3.3.14). */
export function encodeTxtRdata(value: string): Buffer {
  const bytes = Buffer.from(value, "utf8");
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length || i === 0; i += 255) {
    const chunk = bytes.subarray(i, i + 255);
    parts.push(Buffer.from([chunk.length]), chunk);
    if (bytes.length === 0) break;
  }
  return Buffer.concat(parts);
}

export function encodeRecord(r: WireRecord): Buffer {
  const head = Buffer.alloc(10);
  head.writeUInt16BE(r.type, 0);
  head.writeUInt16BE(r.class, 2);
  head.writeUInt32BE(r.ttl, 4);
  head.writeUInt16BE(r.rdata.length, 8);
  return Buffer.concat([encodeName(r.name), head, r.rdata]);
}

/**
 * An RFC 2136 UPDATE message (section 2): zone section = the zone's SOA question,
 * no prerequisites, the given update RRs, no additional records (TSIG is appended by tsig.ts).
 */
export function encodeUpdate(id: number, zone: string, updates: WireRecord[]): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(OPCODE_UPDATE << 11, 2);
  header.writeUInt16BE(1, 4); // ZOCOUNT
  header.writeUInt16BE(0, 6); // PRCOUNT
  header.writeUInt16BE(updates.length, 8); // UPCOUNT
  header.writeUInt16BE(0, 10); // ADCOUNT
  const zoneQ = Buffer.alloc(4);
  zoneQ.writeUInt16BE(TYPE_SOA, 0);
  zoneQ.writeUInt16BE(CLASS_IN, 2);
  return Buffer.concat([header, encodeName(zone), zoneQ, ...updates.map(encodeRecord)]);
}
