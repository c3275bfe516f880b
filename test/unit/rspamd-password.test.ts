// rspamd's controller password hash computed on the Pulumi side (components/rspamd-password.ts):
// BLAKE2b against RFC 7693 and the BLAKE2 reference test vectors, and the whole `$1$salt$key`
// string against what Debian's `rspamadm pw` prints for the same password and salt.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  blake2b,
  controllerPasswordHash,
  derivedControllerPassword,
  rspamdBase32,
  rspamdPasswordHash,
} from "../../components/rspamd-password";

const ZBASE32 = "ybndrfg8ejkmcpqxot1uwisza345h769";

/** rspamd's base32 read back (least significant bits first), to take the salt out of rspamadm's output. */
function decodeRspamdBase32(text: string): Buffer {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const c of text) {
    acc |= ZBASE32.indexOf(c) << bits;
    bits += 5;
    if (bits >= 8) {
      out.push(acc & 0xff);
      acc >>>= 8;
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** `rspamadm pw --type pbkdf2` with no network at all (a namespace of its own). */
function rspamadmHash(password: string): string {
  const r = spawnSync("unshare", ["--net", "rspamadm", "pw", "--type", "pbkdf2", "-p", password], { encoding: "utf8" });
  if (r.error) throw new Error(`cannot run rspamadm (Debian package "rspamd"): ${r.error.message}`);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

describe("BLAKE2b (RFC 7693)", () => {
  test('BLAKE2b-512("abc") is RFC 7693 Appendix A\'s digest', () => {
    assert.equal(
      blake2b(Buffer.from("abc")).toString("hex"),
      "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d17d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923",
    );
  });

  test("keyed with 00..3f, the empty message and 00..fe give the BLAKE2 reference KAT digests (blake2b-kat.txt)", () => {
    const key = Buffer.from(Array.from({ length: 64 }, (_, i) => i));
    assert.equal(
      blake2b(Buffer.alloc(0), key).toString("hex"),
      "10ebb67700b1868efb4417987acf4690ae9d972fb7a590c2f02871799aaa4786b5e996e8f0f4eb981fc214b005f42d2ff4233499391653df7aefcbc13fc51568",
    );
    assert.equal(
      blake2b(Buffer.from(Array.from({ length: 255 }, (_, i) => i)), key).toString("hex"),
      "142709d62e28fcccd0af97fad0f8465b971e82201dc51070faa0372aa43e92484be1c1e73ba10906d5d1853db6a4106e0a7bf9800d373d6dee2d46d62ef2a461",
    );
  });

  test("unkeyed, it equals Node's blake2b512 at every length around the 128-byte block", () => {
    for (const n of [0, 1, 127, 128, 129, 255, 256, 257, 1000]) {
      const data = randomBytes(n);
      assert.equal(blake2b(data).toString("hex"), createHash("blake2b512").update(data).digest("hex"), `${n} bytes`);
    }
  });
});

describe("the controller password hash", () => {
  for (const password of ["q1-is-the-debian-default", "x".repeat(100)]) {
    test(`equals rspamadm pw's for the same salt (${password.length}-character password)`, () => {
      const theirs = rspamadmHash(password);
      const [, id, salt] = theirs.split("$");
      assert.equal(id, "1");
      assert.equal(rspamdPasswordHash(password, decodeRspamdBase32(salt)), theirs);
    });
  }

  test("is written in rspamd's base32: 32 characters of salt, 52 of key", () => {
    assert.match(
      rspamdPasswordHash("pw", Buffer.alloc(20, 1)),
      /^\$1\$[ybndrfg8ejkmcpqxot1uwisza345h769]{32}\$[ybndrfg8ejkmcpqxot1uwisza345h769]{52}$/,
    );
    // 0xff: its low five bits (31) first, then the remaining three (7)
    assert.equal(rspamdBase32(Buffer.from([0xff])), "98");
  });

  test("derived from a seed, password and hash are the same on every run and differ between seeds", () => {
    const a = derivedControllerPassword("seed one");
    assert.deepEqual(derivedControllerPassword("seed one"), a);
    assert.notEqual(derivedControllerPassword("seed two").password, a.password);
    assert.equal(a.hash, controllerPasswordHash(a.password));
    assert.match(a.password, /^[A-Za-z0-9_-]{43}$/);
  });
});
