// RFC 2136 dynamic updates signed with TSIG (RFC 8945), over UDP with TCP fallback on truncation
// (RFC 1035 4.2). Used by the RFC 2136 DNS-01 solver. The wire format is small enough to write
// here (dnsWire.ts): dns-packet cannot encode class NONE (RFC 2136 2.5.4) nor expose raw TSIG bytes.
import * as dgram from "node:dgram";
import * as net from "node:net";
import { randomInt } from "node:crypto";
import { encodeUpdate, OPCODE_UPDATE, type WireRecord } from "../dns-wire";
import { signMessage, verifyResponse, type TsigKey } from "./tsig";

export interface DnsServerAddress {
  /** IPv4 or IPv6 address of the primary that accepts updates */
  server: string;
  /** default 53 */
  port?: number;
}

export interface UpdateRequest extends DnsServerAddress {
  zone: string;
  updates: WireRecord[];
  tsig: TsigKey;
  /** per attempt; default 5000 */
  timeoutMs?: number;
}

function exchangeUdp(msg: Buffer, server: string, port: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(net.isIPv6(server) ? "udp6" : "udp4");
    const timer = setTimeout(() => {
      sock.close();
      reject(new Error(`no answer from ${server}:${port} (UDP) within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.on("error", (err) => {
      clearTimeout(timer);
      sock.close();
      reject(err);
    });
    sock.on("message", (data) => {
      if (data.length < 12 || data.readUInt16BE(0) !== msg.readUInt16BE(0)) return; // not ours
      clearTimeout(timer);
      sock.close();
      resolve(data);
    });
    sock.send(msg, port, server);
  });
}

function exchangeTcp(msg: Buffer, server: string, port: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: server, port });
    let buf = Buffer.alloc(0);
    sock.setTimeout(timeoutMs, () => sock.destroy(new Error(`no answer from ${server}:${port} (TCP) within ${timeoutMs} ms`)));
    sock.on("connect", () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(msg.length, 0);
      sock.write(Buffer.concat([len, msg]));
    });
    sock.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        sock.end();
        resolve(buf.subarray(2, 2 + buf.readUInt16BE(0)));
      }
    });
    sock.on("error", reject);
    sock.on("close", () => reject(new Error(`connection to ${server}:${port} closed before an answer`)));
  });
}

/** RFC 1035 4.1.1 and RFC 2136 2.2 */
function rcodeName(code: number): string {
  const names = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE"];
  return names[code] ?? `RCODE ${code}`;
}

/**
 * Send one signed UPDATE and check the answer: same ID, TSIG verifies, RCODE NOERROR.
 * Errors name the server, the zone and the RCODE or TSIG problem.
 */
export async function sendUpdate(req: UpdateRequest): Promise<void> {
  const port = req.port ?? 53;
  const timeoutMs = req.timeoutMs ?? 5000;
  const where = `RFC 2136 update of zone ${req.zone} at ${req.server}:${port}`;
  const unsigned = encodeUpdate(randomInt(0, 65536), req.zone, req.updates);
  const { signed, mac } = signMessage(unsigned, req.tsig);

  let answer: Buffer;
  try {
    answer = await exchangeUdp(signed, req.server, port, timeoutMs).catch(() => exchangeUdp(signed, req.server, port, timeoutMs));
    if ((answer.readUInt16BE(2) & 0x0200) !== 0) answer = await exchangeTcp(signed, req.server, port, timeoutMs);
  } catch (err) {
    throw new Error(`${where}: ${(err as Error).message}`);
  }
  const flags = answer.readUInt16BE(2);
  if ((flags & 0x8000) === 0 || ((flags >> 11) & 0xf) !== OPCODE_UPDATE) {
    throw new Error(`${where}: the answer is not an UPDATE response`);
  }
  const tsig = verifyResponse(answer, req.tsig, mac);
  const rcode = rcodeName(flags & 0xf);
  if (rcode !== "NOERROR") {
    const why = tsig.tsigError ? ` (${tsig.problem}; check the TSIG key name, algorithm and secret)` : "";
    throw new Error(`${where} was refused: ${rcode}${why}`);
  }
  if (!tsig.ok) throw new Error(`${where}: ${tsig.problem}`);
}
