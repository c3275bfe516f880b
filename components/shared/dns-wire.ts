// The few pieces of DNS wire format (RFC 1035 4.1) that RFC 2136 updates and TSIG need. Written
// here rather than taken from dns-packet: it cannot encode class NONE (RFC 2136 2.5.4) nor give the
// raw bytes of the TSIG RR that the MAC covers.

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
      if (bytes.length < 1 || bytes.length > 63) throw new Error(`DNS name "${name}": label "${label}" must be 1-63 bytes`);
      parts.push(Buffer.from([bytes.length]), bytes);
    }
  }
  parts.push(Buffer.from([0]));
  const out = Buffer.concat(parts);
  if (out.length > 255) throw new Error(`DNS name "${name}" is longer than 255 bytes`);
  return out;
}

/** Read a possibly compressed name at offset; `next` is the offset after it in the original stream. */
export function readName(buf: Buffer, offset: number): { name: string; next: number } {
  const labels: string[] = [];
  let p = offset;
  let next = -1;
  for (let hops = 0; hops < 128; hops++) {
    if (p >= buf.length) throw new Error("DNS message truncated inside a name");
    const len = buf[p];
    if (len === 0) {
      if (next < 0) next = p + 1;
      return { name: labels.length ? `${labels.join(".")}.` : ".", next };
    }
    if ((len & 0xc0) === 0xc0) {
      if (next < 0) next = p + 2;
      p = ((len & 0x3f) << 8) | buf[p + 1];
      continue;
    }
    labels.push(buf.subarray(p + 1, p + 1 + len).toString("utf8"));
    p += 1 + len;
  }
  throw new Error("DNS name has a compression loop");
}

export function skipQuestion(buf: Buffer, offset: number): number {
  return readName(buf, offset).next + 4;
}

export function skipRecord(buf: Buffer, offset: number): number {
  const p = readName(buf, offset).next;
  return p + 10 + buf.readUInt16BE(p + 8);
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

export interface WireRecord {
  name: string;
  type: number;
  class: number;
  ttl: number;
  rdata: Buffer;
}

function encodeRecord(r: WireRecord): Buffer {
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
