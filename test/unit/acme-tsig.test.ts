import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { signMessage, verifyResponse, checkTsigKey, type TsigKey } from "../../components/shared/acme/tsig";
import { encodeUpdate, encodeName, encodeTxtRdata, readName, CLASS_IN, TYPE_TXT } from "../../components/shared/dns-wire";

const key: TsigKey = { name: "update-key.", algorithm: "hmac-sha256", secretB64: Buffer.alloc(32, 9).toString("base64") };
const now = new Date("2026-01-01T00:00:00Z");

/** Build what a server answers: the request's header as a response, TSIG'd over request MAC + message (RFC 8945 4.3.2). */
function serverAnswer(requestMac: Buffer, id: number, secret = key.secretB64, timeSigned = Math.floor(now.getTime() / 1000)): Buffer {
  const msg = Buffer.alloc(12);
  msg.writeUInt16BE(id, 0);
  msg.writeUInt16BE(0x8000 | (5 << 11), 2);
  const alg = encodeName("hmac-sha256");
  const vars = Buffer.concat([
    encodeName("update-key"),
    Buffer.from([0, 255, 0, 0, 0, 0]),
    alg,
    Buffer.from([0, 0, ...u32(timeSigned), 1, 44, 0, 0, 0, 0]),
  ]);
  const mac = createHmac("sha256", Buffer.from(secret, "base64"))
    .update(Buffer.from([requestMac.length >> 8, requestMac.length & 255]))
    .update(requestMac)
    .update(msg)
    .update(vars)
    .digest();
  const rdata = Buffer.concat([
    alg,
    Buffer.from([0, 0, ...u32(timeSigned), 1, 44, 0, 32]),
    mac,
    Buffer.from([id >> 8, id & 255, 0, 0, 0, 0]),
  ]);
  const rr = Buffer.concat([
    encodeName("update-key"),
    Buffer.from([0, 250, 0, 255, 0, 0, 0, 0, rdata.length >> 8, rdata.length & 255]),
    rdata,
  ]);
  const out = Buffer.concat([msg, rr]);
  out.writeUInt16BE(1, 10);
  return out;
}
function u32(n: number): number[] {
  return [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
}

describe("TSIG (RFC 8945)", () => {
  const update = encodeUpdate(4242, "example.test.", [
    { name: "_acme-challenge.a.example.test.", type: TYPE_TXT, class: CLASS_IN, ttl: 60, rdata: encodeTxtRdata("v") },
  ]);

  test("signing appends one TSIG RR naming the key and algorithm, and counts it in ARCOUNT", () => {
    const { signed, mac } = signMessage(update, key, now);
    assert.equal(signed.readUInt16BE(10), 1);
    assert.equal(mac.length, 32);
    const owner = readName(signed, update.length);
    assert.equal(owner.name, "update-key.");
    assert.equal(signed.readUInt16BE(owner.next), 250);
    assert.equal(readName(signed, owner.next + 10).name, "hmac-sha256.");
  });

  test("a correctly signed answer verifies", () => {
    const { mac } = signMessage(update, key, now);
    assert.deepEqual(verifyResponse(serverAnswer(mac, 4242), key, mac, now), { ok: true });
  });

  test("an answer signed with another secret does not verify", () => {
    const { mac } = signMessage(update, key, now);
    const r = verifyResponse(serverAnswer(mac, 4242, Buffer.alloc(32, 1).toString("base64")), key, mac, now);
    assert.equal(r.ok, false);
    assert.match(r.problem!, /MAC does not verify/);
  });

  test("an answer whose time is outside the fudge does not verify", () => {
    const { mac } = signMessage(update, key, now);
    const r = verifyResponse(serverAnswer(mac, 4242, key.secretB64, Math.floor(now.getTime() / 1000) - 1000), key, mac, now);
    assert.equal(r.ok, false);
    assert.match(r.problem!, /time is 1000 s off/);
  });

  test("an unsigned answer is reported as such", () => {
    const { mac } = signMessage(update, key, now);
    const unsigned = Buffer.alloc(12);
    unsigned.writeUInt16BE(0x8000 | (5 << 11), 2);
    assert.match(verifyResponse(unsigned, key, mac, now).problem!, /not signed/);
  });

  test("key shape errors name the field", () => {
    assert.throws(
      () => checkTsigKey({ ...key, algorithm: "hmac-md5" as never }),
      /tsig\.algorithm: "hmac-md5" is not one of hmac-sha256\|hmac-sha384\|hmac-sha512/,
    );
    assert.throws(() => checkTsigKey({ ...key, secretB64: "c2hvcnQ=" }), /tsig\.secret: must be base64 of at least 16 bytes/);
    assert.throws(() => checkTsigKey({ ...key, name: "bad key" }), /tsig\.name: "bad key" is not a DNS name/);
  });

  test("TXT values longer than 255 bytes are split into character-strings (RFC 1035 3.3.14)", () => {
    const rdata = encodeTxtRdata("x".repeat(300));
    assert.deepEqual([rdata[0], rdata[256], rdata.length], [255, 45, 302]);
  });
});
