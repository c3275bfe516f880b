// The Sender Rewriting Scheme (Shevek's SRS, as libsrs2 and postsrsd implement it): mail an alias
// forwards to another server leaves with a reverse-path in our domain, so SPF at the destination
// (RFC 7208 2.4: it checks the MAIL FROM domain) sees a domain that authorizes us, and a bounce
// comes back to us, where the address is checked (hash, age) before it goes on to the original.
//
// Format (postsrsd src/srs2.c, roehling/postsrsd ad76f54: srs_compile_shortcut, srs_compile_guarded,
// srs_parse_shortcut, srs_parse_guarded):
//   SRS0=HHHH=TT=orighost=origlocal@ourdomain
//     TT: days since the epoch mod 1024, two base32 characters (srs_timestamp_create);
//     HHHH: the first 4 characters of base64(HMAC-SHA1(secret, lowercase(TT . orighost . origlocal))).
//   SRS1=HHHH=srs0host==HHHH0=TT=orighost=origlocal@ourdomain
//     forwarding a sender that is already SRS0 at srs0host: that SRS0 part (from its first
//     separator on) is kept opaque; HHHH covers lowercase(srs0host . opaque).
//   An SRS1 sender forwarded again keeps its first-hop host and opaque part, with our own hash.
// Checking (srs_hash_check, base64_equivalent, srs_timestamp_check): the hash is compared without
// regard to case and with `+` = `-` and `/` = `_` (postsrsd 1.x writes base64 with `+/`, 2.x with
// `-_`); every configured secret is tried, so a new secret can sign while the old one still
// verifies; the stamp is valid up to `maxAgeDays` days after the day it names.
// We write `-_` (base64url, postsrsd 2.x): `+` is a common recipient delimiter and `/` is
// awkward in file-based mail stores (postsrsd issue #189).
import { createHmac } from "node:crypto";

const TIME_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const HASH_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const DAY_MS = 86_400_000;
/** two base32 characters: 10 bits of days (srs2.c SRS_TIME_SLOTS) */
const TIME_SLOTS = 1024;
const HASH_LENGTH = 4;
/** srs2.c srs_init: maxage 21 days */
export const DEFAULT_SRS_MAX_AGE_DAYS = 21;
/** srs2.c srs_separators: the character after SRS0/SRS1 may be any of these; the inner ones are always "=" */
const SEPARATORS = "=-+";

export interface SrsOptions {
  /** the first signs; all verify (rotation) */
  secrets: string[];
  maxAgeDays?: number;
  /** ms since the epoch; tests set it */
  now?: () => number;
}

export type SrsReverse =
  /** the address the SRS address stands for: the original sender (SRS0) or the first forwarder's SRS0 address (SRS1) */
  { ok: true; address: string } | { ok: false; reason: "not-srs" | "malformed" | "bad-hash" | "expired" };

/** Whether a local part is in SRS form at all (SRS0 or SRS1 and a separator), whatever its validity. */
export function isSrsLocalPart(local: string): boolean {
  return /^srs[01]/i.test(local) && local.length > 4 && SEPARATORS.includes(local[4]);
}

export class Srs {
  private readonly secrets: string[];
  private readonly maxAgeDays: number;
  private readonly now: () => number;

  constructor(opts: SrsOptions) {
    if (opts.secrets.length === 0 || opts.secrets.some((s) => s.length === 0)) throw new Error("SRS needs at least one non-empty secret");
    this.secrets = opts.secrets;
    this.maxAgeDays = opts.maxAgeDays ?? DEFAULT_SRS_MAX_AGE_DAYS;
    this.now = opts.now ?? Date.now;
  }

  /** The reverse-path for `sender` (local@host) forwarded by us from `domain`. */
  forward(sender: string, domain: string): string {
    const at = sender.lastIndexOf("@");
    if (at <= 0) throw new Error(`SRS: ${JSON.stringify(sender)} is not local@domain`);
    const local = sender.slice(0, at);
    const host = sender.slice(at + 1);
    if (/^srs1/i.test(local) && SEPARATORS.includes(local[4] ?? "")) {
      // SRS1=HHHH=firsthop=opaque: rehash first hop and opaque with our secret
      const parts = /^.{5}[^=]*=([^=]+)=(.+)$/s.exec(local);
      if (parts) return `SRS1=${this.hash(0, parts[1], parts[2])}=${parts[1]}=${parts[2]}@${domain}`;
    }
    if (/^srs0/i.test(local) && SEPARATORS.includes(local[4] ?? "")) {
      const opaque = local.slice(4);
      return `SRS1=${this.hash(0, host, opaque)}=${host}=${opaque}@${domain}`;
    }
    const stamp = this.stamp();
    return `SRS0=${this.hash(0, stamp, host, local)}=${stamp}=${host}=${local}@${domain}`;
  }

  /** Checks an SRS address that came to us (hash, then age) and returns where it leads. */
  reverse(address: string): SrsReverse {
    const at = address.lastIndexOf("@");
    const local = at < 0 ? address : address.slice(0, at);
    if (!isSrsLocalPart(local)) return { ok: false, reason: "not-srs" };
    const rest = local.slice(5);
    if (/^srs1/i.test(local)) {
      const m = /^([^=]+)=([^=]+)=(.+)$/s.exec(rest);
      if (!m) return { ok: false, reason: "malformed" };
      const [, hash, host, opaque] = m;
      if (!this.verify(hash, host, opaque)) return { ok: false, reason: "bad-hash" };
      return { ok: true, address: `SRS0${opaque}@${host}` };
    }
    const m = /^([^=]+)=([^=]+)=([^=]+)=(.+)$/s.exec(rest);
    if (!m) return { ok: false, reason: "malformed" };
    const [, hash, stamp, host, user] = m;
    if (!this.verify(hash, stamp, host, user)) return { ok: false, reason: "bad-hash" };
    if (!this.fresh(stamp)) return { ok: false, reason: "expired" };
    return { ok: true, address: `${user}@${host}` };
  }

  private stamp(): string {
    const days = Math.floor(this.now() / DAY_MS);
    return TIME_CHARS[(days >> 5) & 31] + TIME_CHARS[days & 31];
  }

  /** srs_timestamp_check: the stamp's day, in the current 1024-day cycle, at most maxAge days ago. */
  private fresh(stamp: string): boolean {
    if (stamp.length !== 2) return false;
    let then = 0;
    for (const c of stamp.toUpperCase()) {
      const v = TIME_CHARS.indexOf(c);
      if (v < 0) return false;
      then = (then << 5) | v;
    }
    let now = Math.floor(this.now() / DAY_MS) % TIME_SLOTS;
    while (now < then) now += TIME_SLOTS;
    return now <= then + this.maxAgeDays;
  }

  private hash(secret: number, ...parts: string[]): string {
    const mac = createHmac("sha1", this.secrets[secret]);
    // tolower() of the C library: ASCII letters only
    for (const p of parts)
      mac.update(
        p.replace(/[A-Z]/g, (c) => c.toLowerCase()),
        "utf8",
      );
    const digest = mac.digest();
    let out = "";
    // the leading 6-bit groups of the digest, as base64 (srs_hash_create_v)
    for (let i = 0; i < HASH_LENGTH; i++) {
      const bit = i * 6;
      const word = (digest[bit >> 3] << 8) | digest[(bit >> 3) + 1];
      out += HASH_CHARS[(word >> (10 - (bit & 7))) & 63];
    }
    return out;
  }

  private verify(given: string, ...parts: string[]): boolean {
    if (given.length < HASH_LENGTH) return false;
    const g = normalizeHash(given.slice(0, HASH_LENGTH));
    return this.secrets.some((_, i) => normalizeHash(this.hash(i, ...parts)) === g);
  }
}

/** base64_equivalent: case does not count, and `+/` stand for `-_`. */
function normalizeHash(h: string): string {
  return h.toLowerCase().replace(/\+/g, "-").replace(/\//g, "_");
}
