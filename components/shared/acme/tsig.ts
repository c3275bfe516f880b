// TSIG: secret key transaction authentication for DNS (RFC 8945), hmac-sha256/384/512 only.
// Pure functions over wire-format messages; the transport lives in rfc2136.ts.
import { createHmac, timingSafeEqual } from "node:crypto";
import { encodeName, readName, skipRecord, skipQuestion } from "../dns-wire";

export type TsigAlgorithm = "hmac-sha256" | "hmac-sha384" | "hmac-sha512";

export const TSIG_ALGORITHMS: readonly TsigAlgorithm[] = ["hmac-sha256", "hmac-sha384", "hmac-sha512"];

export interface TsigKey {
  /** key name, e.g. "update-key." (compared case-insensitively, RFC 8945 4.3.3 canonical form) */
  name: string;
  algorithm: TsigAlgorithm;
  /** the shared secret, base64 */
  secretB64: string;
}

const TYPE_TSIG = 250;
const CLASS_ANY = 255;
/** RFC 8945 10: 300 s is the recommended fudge */
const FUDGE = 300;

function hashOf(alg: TsigAlgorithm): string {
  return alg.slice("hmac-".length);
}

/** Validate a key's shape; errors name the field at fault. */
export function checkTsigKey(key: TsigKey, where = "tsig"): void {
  if (!TSIG_ALGORITHMS.includes(key.algorithm)) {
    throw new Error(`${where}.algorithm: "${key.algorithm}" is not one of ${TSIG_ALGORITHMS.join("|")}`);
  }
  if (!/^([a-zA-Z0-9_-]{1,63}\.?)+$/.test(key.name)) {
    throw new Error(`${where}.name: "${key.name}" is not a DNS name (e.g. "update-key.")`);
  }
  const secret = Buffer.from(key.secretB64, "base64");
  if (secret.length < 16 || secret.toString("base64").replace(/=+$/, "") !== key.secretB64.replace(/\s/g, "").replace(/=+$/, "")) {
    throw new Error(`${where}.secret: must be base64 of at least 16 bytes (as in "secret:" of a knot/BIND key)`);
  }
}

/** RFC 8945 4.3.3: the TSIG variables that are MAC'd after the message. */
function tsigVariables(key: TsigKey, timeSigned: number, fudge: number, error: number, other: Buffer): Buffer {
  const keyName = encodeName(key.name.toLowerCase());
  const alg = encodeName(key.algorithm);
  const fixed1 = Buffer.alloc(6);
  fixed1.writeUInt16BE(CLASS_ANY, 0);
  fixed1.writeUInt32BE(0, 2); // TTL
  const fixed2 = Buffer.alloc(10);
  writeUint48(fixed2, timeSigned, 0);
  fixed2.writeUInt16BE(fudge, 6);
  fixed2.writeUInt16BE(error, 8);
  const otherLen = Buffer.alloc(2);
  otherLen.writeUInt16BE(other.length, 0);
  return Buffer.concat([keyName, fixed1, alg, fixed2, otherLen, other]);
}

function writeUint48(buf: Buffer, value: number, offset: number): void {
  buf.writeUInt16BE(Math.floor(value / 2 ** 32), offset);
  buf.writeUInt32BE(value % 2 ** 32, offset + 2);
}

function readUint48(buf: Buffer, offset: number): number {
  return buf.readUInt16BE(offset) * 2 ** 32 + buf.readUInt32BE(offset + 2);
}

/**
 * Sign a request: append a TSIG RR to `message` (a complete wire message without TSIG) and
 * increment ARCOUNT. Returns the signed message and the request MAC (needed to verify the answer).
 */
export function signMessage(message: Buffer, key: TsigKey, now: Date = new Date()): { signed: Buffer; mac: Buffer } {
  const timeSigned = Math.floor(now.getTime() / 1000);
  const other = Buffer.alloc(0);
  const hmac = createHmac(hashOf(key.algorithm), Buffer.from(key.secretB64, "base64"));
  hmac.update(message);
  hmac.update(tsigVariables(key, timeSigned, FUDGE, 0, other));
  const mac = hmac.digest();
  const originalId = message.readUInt16BE(0);

  // RFC 8945 4.2: the TSIG RR
  const alg = encodeName(key.algorithm);
  const rdataFixed = Buffer.alloc(10);
  writeUint48(rdataFixed, timeSigned, 0);
  rdataFixed.writeUInt16BE(FUDGE, 6);
  rdataFixed.writeUInt16BE(mac.length, 8);
  const tail = Buffer.alloc(6);
  tail.writeUInt16BE(originalId, 0);
  tail.writeUInt16BE(0, 2); // error
  tail.writeUInt16BE(0, 4); // other len
  const rdata = Buffer.concat([alg, rdataFixed, mac, tail]);
  const head = Buffer.alloc(10);
  head.writeUInt16BE(TYPE_TSIG, 0);
  head.writeUInt16BE(CLASS_ANY, 2);
  head.writeUInt32BE(0, 4);
  head.writeUInt16BE(rdata.length, 8);
  const rr = Buffer.concat([encodeName(key.name.toLowerCase()), head, rdata]);

  const signed = Buffer.concat([message, rr]);
  signed.writeUInt16BE(message.readUInt16BE(10) + 1, 10);
  return { signed, mac };
}

export interface TsigCheck {
  /** true when the response carries a TSIG whose MAC and time verify */
  ok: boolean;
  /** why not, for the error message */
  problem?: string;
  /** the TSIG error field (RFC 8945 5.3: 16 BADSIG, 17 BADKEY, 18 BADTIME, 22 BADTRUNC) */
  tsigError?: number;
}

/** Verify the TSIG on a response to a request whose MAC was `requestMac` (RFC 8945 5.3). */
export function verifyResponse(response: Buffer, key: TsigKey, requestMac: Buffer, now: Date = new Date()): TsigCheck {
  const qd = response.readUInt16BE(4);
  const total = response.readUInt16BE(6) + response.readUInt16BE(8) + response.readUInt16BE(10);
  if (response.readUInt16BE(10) === 0) return { ok: false, problem: "the response is not signed (no TSIG record)" };
  let offset = 12;
  for (let i = 0; i < qd; i++) offset = skipQuestion(response, offset);
  for (let i = 0; i < total - 1; i++) offset = skipRecord(response, offset);
  const tsigStart = offset;
  const { name: ownerName, next } = readName(response, tsigStart);
  if (response.readUInt16BE(next) !== TYPE_TSIG) return { ok: false, problem: "the last additional record is not a TSIG" };
  if (ownerName.toLowerCase().replace(/\.$/, "") !== key.name.toLowerCase().replace(/\.$/, "")) {
    return { ok: false, problem: `the response is signed with key "${ownerName}", not "${key.name}"` };
  }
  let p = next + 10;
  const alg = readName(response, p);
  p = alg.next;
  const timeSigned = readUint48(response, p);
  const fudge = response.readUInt16BE(p + 6);
  const macLen = response.readUInt16BE(p + 8);
  const mac = response.subarray(p + 10, p + 10 + macLen);
  p += 10 + macLen;
  const originalId = response.readUInt16BE(p);
  const error = response.readUInt16BE(p + 2);
  const otherLen = response.readUInt16BE(p + 4);
  const other = response.subarray(p + 6, p + 6 + otherLen);
  if (error !== 0 && macLen === 0) {
    return { ok: false, tsigError: error, problem: `the server rejected our signature (TSIG error ${tsigErrorName(error)})` };
  }
  // RFC 8945 4.3.2 + 4.3.3: request MAC (with length), the message as it was before TSIG (ARCOUNT - 1, original ID), variables
  const body = Buffer.from(response.subarray(0, tsigStart));
  body.writeUInt16BE(originalId, 0);
  body.writeUInt16BE(response.readUInt16BE(10) - 1, 10);
  const reqMacLen = Buffer.alloc(2);
  reqMacLen.writeUInt16BE(requestMac.length, 0);
  const hmac = createHmac(hashOf(key.algorithm), Buffer.from(key.secretB64, "base64"));
  hmac.update(reqMacLen);
  hmac.update(requestMac);
  hmac.update(body);
  hmac.update(tsigVariables(key, timeSigned, fudge, error, other));
  const expected = hmac.digest();
  if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) {
    return { ok: false, problem: "the response's TSIG MAC does not verify (wrong secret or tampered answer)" };
  }
  const nowS = Math.floor(now.getTime() / 1000);
  if (Math.abs(nowS - timeSigned) > fudge) {
    return { ok: false, problem: `the response's TSIG time is ${nowS - timeSigned} s off (fudge ${fudge} s)` };
  }
  if (error !== 0) return { ok: false, tsigError: error, problem: `TSIG error ${tsigErrorName(error)}` };
  return { ok: true };
}

export function tsigErrorName(code: number): string {
  return ({ 16: "BADSIG", 17: "BADKEY", 18: "BADTIME", 22: "BADTRUNC" } as Record<number, string>)[code] ?? String(code);
}
