// rspamd's controller password hash, computed here so that only the hash reaches the box:
// `$1$<salt>$<key>`, the format `rspamadm pw --type pbkdf2` prints and the controller checks
// (src/rspamadm/pw.c rspamadm_pw_encrypt; src/controller.c rspamd_check_encrypted_password at tag 3.4).
//
// Id 1 is PBKDF2 whose pseudo-random function is keyed BLAKE2b-512 with the password as the key
// (src/libcryptobox/cryptobox.c rspamd_cryptobox_pbkdf2), 16000 rounds, a 20-byte salt and a
// 32-byte key (src/libutil/util.c pbkdf_list); both are written in rspamd's zbase32 with its bits
// taken least significant first (src/libutil/str_util.c rspamd_encode_base32_buf,
// RSPAMD_BASE32_DEFAULT). Node's crypto has BLAKE2b-512 but no keyed form, so BLAKE2b is here, after
// RFC 7693's reference code.
import { createHmac } from "node:crypto";

const IV = new Uint32Array([
  0xf3bcc908, 0x6a09e667, 0x84caa73b, 0xbb67ae85, 0xfe94f82b, 0x3c6ef372, 0x5f1d36f1, 0xa54ff53a, 0xade682d1, 0x510e527f, 0x2b3e6c1f,
  0x9b05688c, 0xfb41bd6b, 0x1f83d9ab, 0x137e2179, 0x5be0cd19,
]);

// RFC 7693 2.7; rounds 10 and 11 repeat rows 0 and 1.
const SIGMA = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
  [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
  [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
  [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
  [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
  [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
  [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
  [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
  [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
  [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0],
];
const SIGMA2 = [...SIGMA, SIGMA[0], SIGMA[1]].flat().map((x) => x * 2);

// 64-bit words as (low, high) pairs of 32-bit halves: word i is [2i, 2i+1].
const v = new Uint32Array(32);
const m = new Uint32Array(32);

function add64(a: number, b: number): void {
  const lo = v[a] + v[b];
  v[a + 1] = v[a + 1] + v[b + 1] + (lo >= 0x100000000 ? 1 : 0);
  v[a] = lo;
}

function add64m(a: number, lo: number, hi: number): void {
  const sum = v[a] + lo;
  v[a + 1] = v[a + 1] + hi + (sum >= 0x100000000 ? 1 : 0);
  v[a] = sum;
}

/** RFC 7693 3.1 G, rotations 32, 24, 16 and 63. */
function g(a: number, b: number, c: number, d: number, x: number, y: number): void {
  add64(a, b);
  add64m(a, m[x], m[x + 1]);
  let lo = v[d] ^ v[a];
  let hi = v[d + 1] ^ v[a + 1];
  v[d] = hi;
  v[d + 1] = lo;
  add64(c, d);
  lo = v[b] ^ v[c];
  hi = v[b + 1] ^ v[c + 1];
  v[b] = (lo >>> 24) ^ (hi << 8);
  v[b + 1] = (hi >>> 24) ^ (lo << 8);
  add64(a, b);
  add64m(a, m[y], m[y + 1]);
  lo = v[d] ^ v[a];
  hi = v[d + 1] ^ v[a + 1];
  v[d] = (lo >>> 16) ^ (hi << 16);
  v[d + 1] = (hi >>> 16) ^ (lo << 16);
  add64(c, d);
  lo = v[b] ^ v[c];
  hi = v[b + 1] ^ v[c + 1];
  v[b] = (hi >>> 31) ^ (lo << 1);
  v[b + 1] = (lo >>> 31) ^ (hi << 1);
}

/** RFC 7693 3.2 F. `t` is the byte count so far (below 2^53 here). */
function compress(h: Uint32Array, block: Uint8Array, t: number, last: boolean): void {
  for (let i = 0; i < 16; i++) {
    v[i] = h[i];
    v[i + 16] = IV[i];
  }
  v[24] ^= t >>> 0;
  v[25] ^= Math.floor(t / 0x100000000);
  if (last) {
    v[28] = ~v[28];
    v[29] = ~v[29];
  }
  for (let i = 0; i < 32; i++) m[i] = block[4 * i] | (block[4 * i + 1] << 8) | (block[4 * i + 2] << 16) | (block[4 * i + 3] << 24);
  for (let r = 0; r < 12; r++) {
    const s = r * 16;
    g(0, 8, 16, 24, SIGMA2[s], SIGMA2[s + 1]);
    g(2, 10, 18, 26, SIGMA2[s + 2], SIGMA2[s + 3]);
    g(4, 12, 20, 28, SIGMA2[s + 4], SIGMA2[s + 5]);
    g(6, 14, 22, 30, SIGMA2[s + 6], SIGMA2[s + 7]);
    g(0, 10, 20, 30, SIGMA2[s + 8], SIGMA2[s + 9]);
    g(2, 12, 22, 24, SIGMA2[s + 10], SIGMA2[s + 11]);
    g(4, 14, 16, 26, SIGMA2[s + 12], SIGMA2[s + 13]);
    g(6, 8, 18, 28, SIGMA2[s + 14], SIGMA2[s + 15]);
  }
  for (let i = 0; i < 16; i++) h[i] = h[i] ^ v[i] ^ v[i + 16];
}

/** BLAKE2b (RFC 7693) with an optional key of up to 64 bytes; `outLen` 1..64 bytes. */
export function blake2b(data: Uint8Array, key: Uint8Array = new Uint8Array(0), outLen = 64): Buffer {
  if (key.length > 64) throw new Error("blake2b: a key has at most 64 bytes");
  if (outLen < 1 || outLen > 64) throw new Error("blake2b: the output has 1 to 64 bytes");
  const h = new Uint32Array(IV);
  h[0] ^= 0x01010000 ^ (key.length << 8) ^ outLen;
  // A key is hashed as a first block of its own, padded with zeros (RFC 7693 3.3).
  const input = key.length > 0 ? Buffer.concat([Buffer.from(key), Buffer.alloc(128 - key.length), Buffer.from(data)]) : Buffer.from(data);
  const block = new Uint8Array(128);
  let t = 0;
  let off = 0;
  while (input.length - off > 128) {
    t += 128;
    compress(h, input.subarray(off, off + 128), t, false);
    off += 128;
  }
  block.fill(0);
  block.set(input.subarray(off));
  t += input.length - off;
  compress(h, block, t, true);
  const out = Buffer.alloc(outLen);
  for (let i = 0; i < outLen; i++) out[i] = (h[i >> 2] >>> (8 * (i & 3))) & 0xff;
  return out;
}

/** rspamd_cryptobox_pbkdf2: PBKDF2 with keyed BLAKE2b-512 as its pseudo-random function. */
export function rspamdPbkdf2(password: Buffer, salt: Buffer, keyLen: number, rounds: number): Buffer {
  // Passwords longer than a BLAKE2b key are hashed first (cryptobox.c: "not compatible with the original implementation but safe").
  const key = password.length <= 64 ? password : blake2b(password);
  const out: Buffer[] = [];
  for (let count = 1, left = keyLen; left > 0; count++) {
    const block = Buffer.alloc(4);
    block.writeUInt32BE(count);
    let d = blake2b(Buffer.concat([salt, block]), key);
    const acc = Buffer.from(d);
    for (let i = 1; i < rounds; i++) {
      d = blake2b(d, key);
      for (let j = 0; j < acc.length; j++) acc[j] ^= d[j];
    }
    out.push(acc.subarray(0, Math.min(left, 64)));
    left -= 64;
  }
  return Buffer.concat(out);
}

const ZBASE32 = "ybndrfg8ejkmcpqxot1uwisza345h769";

/** rspamd's default base32: the zbase32 alphabet, bits taken least significant first. */
export function rspamdBase32(bytes: Buffer): string {
  let out = "";
  let acc = 0;
  let bits = 0;
  for (const byte of bytes) {
    acc |= byte << bits;
    bits += 8;
    while (bits >= 5) {
      out += ZBASE32[acc & 31];
      acc >>>= 5;
      bits -= 5;
    }
  }
  if (bits > 0) out += ZBASE32[acc & 31];
  return out;
}

/** PBKDF2-blake2b as rspamd's pbkdf_list declares it: id 1, 16000 rounds, 20-byte salt, 32-byte key. */
const PBKDF2_ID = 1;
const PBKDF2_ROUNDS = 16000;
export const RSPAMD_SALT_BYTES = 20;
const PBKDF2_KEY_BYTES = 32;

/** The `$1$salt$key` string for rspamd's `password`/`enable_password`; the salt (20 bytes) makes it reproducible. */
export function rspamdPasswordHash(password: string, salt: Buffer): string {
  if (salt.length !== RSPAMD_SALT_BYTES) throw new Error(`rspamd password hash: the salt must be ${RSPAMD_SALT_BYTES} bytes`);
  if (password.length === 0) throw new Error("rspamd password hash: the password is empty");
  const key = rspamdPbkdf2(Buffer.from(password, "utf8"), salt, PBKDF2_KEY_BYTES, PBKDF2_ROUNDS);
  return `$${PBKDF2_ID}$${rspamdBase32(salt)}$${rspamdBase32(key)}`;
}

/**
 * The controller password and its hash, both reproducible from `seed` (a secret the Pulumi state
 * keeps, e.g. a tls.PrivateKey's PEM): the same seed gives the same files on every `pulumi up`,
 * so an unchanged stack changes nothing on the box.
 */
export function derivedControllerPassword(seed: string): { password: string; hash: string } {
  const password = createHmac("sha256", seed).update("mailstack rspamd controller password").digest("base64url");
  return { password, hash: controllerPasswordHash(password) };
}

/** The hash of a given password, with a salt derived from it (reproducible, unique per password). */
export function controllerPasswordHash(password: string): string {
  const salt = createHmac("sha256", password).update("mailstack rspamd controller salt").digest().subarray(0, RSPAMD_SALT_BYTES);
  return rspamdPasswordHash(password, salt);
}
