// A minimal DNS stub client that tells whether the resolver validated an answer with DNSSEC.
//
// DANE (RFC 7672) may only use TLSA records, and only trust an MX RRset, that DNSSEC secured.
// maild does not validate itself; like Postfix it relies on a validating resolver on a trusted
// path (RFC 7672 8.3: typically on the same host) and reads the Authenticated Data bit of its
// answers. Node's resolver (c-ares) does not expose the header flags, so the queries are made
// here: RD=1 and AD=1 in the query (RFC 6840 5.7: a stub asks for the AD bit by setting it),
// EDNS0 (RFC 6891) with a 1232-byte UDP payload (the DNS flag day 2020 value, no fragmentation),
// and a retry over TCP when the answer is truncated (RFC 7766).
import * as dgram from "node:dgram";
import * as net from "node:net";
import { readFileSync } from "node:fs";
import { randomInt } from "node:crypto";
import { parseIpPort } from "../../../components/shared/ip-port";
import { CLASS_IN, encodeName, encodeRecord, readName, readRecord, skipQuestion } from "../../../components/shared/dns-wire";

export const RRTYPE = { A: 1, CNAME: 5, SOA: 6, MX: 15, TXT: 16, AAAA: 28, TLSA: 52 } as const;
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

const TYPE_OPT = 41;
const UDP_PAYLOAD = 1232;
// Header flag bits (RFC 1035 4.1.1, RFC 4035 3.2.3 for AD/CD).
const FLAG_QR = 0x8000;
const FLAG_TC = 0x0200;
const FLAG_RD = 0x0100;
const FLAG_AD = 0x0020;

export interface DnsRecord {
  /** owner name, lowercase, no trailing dot */
  name: string;
  type: number;
  ttl: number;
  /** rdata as sent (no name decompression: TLSA/A/AAAA/TXT need none) */
  data: Buffer;
  /** MX: the exchange, decompressed, without the trailing dot (the preference is data[0..1]) */
  exchange?: string;
}

export interface DnsAnswer {
  rcode: number;
  /** AD: the resolver validated every RRset in the answer (RFC 4035 3.2.3) */
  authenticated: boolean;
  truncated: boolean;
  /** the answer section only */
  answers: DnsRecord[];
  /**
   * NXDOMAIN or no data: how long that may be believed, from the SOA in the authority section
   * (RFC 2308 5: the SOA record's TTL, at most its MINIMUM field); absent without a SOA
   */
  negativeTtl?: number;
}

/** Query one name and type; rejects only on transport problems (timeout, unreachable, garbage). */
export type AdQuery = (name: string, type: number) => Promise<DnsAnswer>;

export interface DnsServer {
  host: string;
  port: number;
}

/** A query for name/type with RD and AD set and an EDNS0 OPT record (DO=0: no RRSIGs wanted). */
export function encodeQuery(id: number, name: string, type: number): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(FLAG_RD | FLAG_AD, 2);
  header.writeUInt16BE(1, 4); // QDCOUNT
  header.writeUInt16BE(1, 10); // ARCOUNT: the OPT record
  const question = Buffer.alloc(4);
  question.writeUInt16BE(type, 0);
  question.writeUInt16BE(CLASS_IN, 2);
  // OPT (RFC 6891 6.1.2): root owner, CLASS = UDP payload size, TTL = extended RCODE/version/flags.
  const opt = encodeRecord({ name: ".", type: TYPE_OPT, class: UDP_PAYLOAD, ttl: 0, rdata: Buffer.alloc(0) });
  return Buffer.concat([header, encodeName(name), question, opt]);
}

/** Names as answers are compared with questions: lowercase, without the trailing dot. */
function lowerNoDot(name: string): string {
  return name.toLowerCase().replace(/\.$/, "");
}

export interface ParsedResponse extends DnsAnswer {
  id: number;
  question?: { name: string; type: number };
}

/** Parses a response message (header, question, answer section); throws on malformed input. */
export function parseResponse(buf: Buffer): ParsedResponse {
  if (buf.length < 12) throw new Error("DNS message shorter than its header");
  const id = buf.readUInt16BE(0);
  const flags = buf.readUInt16BE(2);
  if ((flags & FLAG_QR) === 0) throw new Error("DNS message is a query, not a response");
  const qdcount = buf.readUInt16BE(4);
  const ancount = buf.readUInt16BE(6);
  const nscount = buf.readUInt16BE(8);
  let pos = 12;
  let question: ParsedResponse["question"];
  for (let i = 0; i < qdcount; i++) {
    const { name, next } = readName(buf, pos);
    pos = skipQuestion(buf, pos);
    if (i === 0) question = { name: lowerNoDot(name), type: buf.readUInt16BE(next) };
  }
  const answers: DnsRecord[] = [];
  const truncated = (flags & FLAG_TC) !== 0;
  for (let i = 0; i < ancount; i++) {
    const r = readRecord(buf, pos);
    if (!r) {
      // TC set: the records that arrived whole are kept; createAdQuery asks again over TCP.
      if (truncated) break;
      throw new Error("DNS message truncated inside a record");
    }
    if (r.class === CLASS_IN) {
      const record: DnsRecord = { name: lowerNoDot(r.name), type: r.type, ttl: r.ttl, data: r.rdata };
      // RFC 1035 3.3.9: PREFERENCE (16 bits), then EXCHANGE, which may point back into the message
      if (r.type === RRTYPE.MX && r.rdata.length > 2) record.exchange = readName(buf, r.next - r.rdata.length + 2).name.replace(/\.$/, "");
      answers.push(record);
    }
    pos = r.next;
  }
  const negativeTtl = truncated ? undefined : soaNegativeTtl(buf, pos, nscount);
  return {
    id,
    rcode: flags & 0x000f,
    authenticated: (flags & FLAG_AD) !== 0,
    truncated,
    answers,
    ...(negativeTtl !== undefined ? { negativeTtl } : {}),
    ...(question ? { question } : {}),
  };
}

/** RFC 2308 5: min(TTL, MINIMUM) of the SOA among the `count` authority records at `pos`, if any. */
function soaNegativeTtl(buf: Buffer, pos: number, count: number): number | undefined {
  for (let i = 0; i < count; i++) {
    const r = readRecord(buf, pos);
    if (!r) return undefined;
    if (r.type === RRTYPE.SOA && r.class === CLASS_IN) {
      // RFC 1035 3.3.13: MNAME, RNAME, then SERIAL, REFRESH, RETRY, EXPIRE, MINIMUM (32 bits each)
      const start = r.next - r.rdata.length;
      const afterNames = readName(buf, readName(buf, start).next).next;
      if (afterNames + 20 > r.next) return undefined;
      return Math.min(r.ttl, buf.readUInt32BE(afterNames + 16));
    }
    pos = r.next;
  }
  return undefined;
}

/** A server as config.ts writes it (components/shared/ip-port.ts), port 53 unless it names one. */
export function parseServer(s: string): DnsServer {
  const parsed = parseIpPort(s);
  return { host: parsed?.ip ?? s, port: parsed?.port ?? 53 };
}

/** The nameservers of resolv.conf(5), in order; 127.0.0.1 when none is listed (the libc default). */
export function systemServers(resolvConf = "/etc/resolv.conf"): DnsServer[] {
  let text = "";
  try {
    text = readFileSync(resolvConf, "utf8");
  } catch {
    // no resolv.conf: the libc default applies
  }
  const servers = text
    .split("\n")
    .map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1])
    .filter((s): s is string => s !== undefined && net.isIP(s.replace(/%.*$/, "")) !== 0)
    .map((host) => ({ host, port: 53 }));
  return servers.length > 0 ? servers : [{ host: "127.0.0.1", port: 53 }];
}

function sameQuestion(r: ParsedResponse, name: string, type: number): boolean {
  return r.question !== undefined && r.question.type === type && r.question.name === name.toLowerCase().replace(/\.$/, "");
}

function udpExchange(server: DnsServer, query: Buffer, id: number, name: string, type: number, timeoutMs: number): Promise<ParsedResponse> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket(net.isIPv6(server.host) ? "udp6" : "udp4");
    const timer = setTimeout(
      () => finish(new Error(`DNS query ${name}/${type} to ${server.host}: no answer in ${timeoutMs} ms`)),
      timeoutMs,
    );
    let done = false;
    const finish = (err: Error | null, r?: ParsedResponse) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.close();
      if (err) reject(err);
      else resolve(r!);
    };
    socket.on("error", (err) => finish(err));
    socket.on("message", (msg, rinfo) => {
      // Only the server asked, with our id and our question (RFC 5452 9.1): anything else is
      // ignored, so a spoofed datagram cannot end the wait for the real answer.
      if (rinfo.port !== server.port) return;
      let r: ParsedResponse;
      try {
        r = parseResponse(msg);
      } catch {
        return;
      }
      if (r.id === id && sameQuestion(r, name, type)) finish(null, r);
    });
    socket.connect(server.port, server.host, () => socket.send(query));
  });
}

function tcpExchange(server: DnsServer, query: Buffer, id: number, name: string, type: number, timeoutMs: number): Promise<ParsedResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: server.host, port: server.port });
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (err: Error | null, r?: ParsedResponse) => {
      if (done) return;
      done = true;
      socket.destroy();
      if (err) reject(err);
      else resolve(r!);
    };
    socket.setTimeout(timeoutMs, () =>
      finish(new Error(`DNS query ${name}/${type} over TCP to ${server.host}: no answer in ${timeoutMs} ms`)),
    );
    socket.on("error", (err) => finish(err));
    socket.on("connect", () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(query.length);
      socket.write(Buffer.concat([len, query]));
    });
    socket.on("data", (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 2 || buf.length < 2 + buf.readUInt16BE(0)) return;
      try {
        const r = parseResponse(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        if (r.id !== id || !sameQuestion(r, name, type))
          finish(new Error(`DNS query ${name}/${type} over TCP: the answer does not match the question`));
        else finish(null, r);
      } catch (err) {
        finish(err as Error);
      }
    });
    socket.on("end", () => finish(new Error(`DNS query ${name}/${type} over TCP: connection closed before the answer`)));
  });
}

/**
 * An AdQuery against `servers`, tried in order on timeouts and network errors (each twice over
 * UDP, then TCP if the UDP answer was truncated).
 */
export function createAdQuery(servers: DnsServer[], timeoutMs = 5000): AdQuery {
  return async (name, type) => {
    let lastError: Error = new Error("no DNS server configured");
    for (const server of servers) {
      for (let attempt = 0; attempt < 2; attempt++) {
        const id = randomInt(0, 65536);
        const query = encodeQuery(id, name, type);
        try {
          const r = await udpExchange(server, query, id, name, type, timeoutMs);
          return r.truncated ? await tcpExchange(server, query, id, name, type, timeoutMs) : r;
        } catch (err) {
          lastError = err as Error;
        }
      }
    }
    throw lastError;
  };
}

/** The servers DANE queries go to: the configured dnsServers, else resolv.conf's nameservers. */
export function adServers(dnsServers?: string[]): DnsServer[] {
  return dnsServers && dnsServers.length > 0 ? dnsServers.map(parseServer) : systemServers();
}
