// SMTP AUTH for submission: argon2id password check (the same PHC hashes Dovecot uses) and the
// throttle that stands between it and a password-guessing client.
//
// Throttling, per client address and per account:
// - An address (IPv4, or the /64 of an IPv6 address: one host there has them all) that fails
//   `maxFailuresPerIp` times within the window is blocked: every AUTH from it is answered 454
//   without looking at the password, so guessing from it stops for the block's duration.
// - An account that sees `maxFailuresPerAccount` failures within the window (a distributed guess
//   from many addresses) is throttled the same way, but only for addresses that have not logged
//   in to it successfully before ("known good"). The owner's usual clients keep working while the
//   account is under attack, which is what keeps the lockout from being a denial of service.
// - Every block ends: it lasts `lockoutSeconds`, doubles with each further block of the same
//   address or account, and is capped at `lockoutMaxSeconds`; a quiet window resets the doubling.
//   An attacker can slow the owner's new clients down for at most the cap, never lock them out.
// Unknown accounts are counted like existing ones and get the same answers and timing, so the
// throttle tells nobody which accounts exist.
import { argon2, randomBytes, timingSafeEqual } from "node:crypto";
import type { SubmissionConfig, UserConfig } from "./config";
import { counter } from "./metrics";
import { clientKey } from "./client-key";
import { parseArgon2id } from "../../components/shared/argon2id";

const authResults = counter("maild_submission_auth_total", "SMTP AUTH attempts on submission, by result");

interface Phc {
  memory: number;
  passes: number;
  parallelism: number;
  salt: Buffer;
  hash: Buffer;
}

/** A user's hash, as config.ts validated it (components/shared/argon2id.ts), ready to check a password. */
export function readArgon2id(text: string): Phc {
  const phc = parseArgon2id(text);
  if (!phc || phc.version !== 19) throw new Error("not an argon2id v=19 PHC string");
  return {
    memory: phc.memory,
    passes: phc.passes,
    parallelism: phc.parallelism,
    salt: Buffer.from(phc.salt, "base64"),
    hash: Buffer.from(phc.hash, "base64"),
  };
}

function argon2id(password: string, p: Phc): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    argon2(
      "argon2id",
      {
        message: password,
        nonce: p.salt,
        parallelism: p.parallelism,
        tagLength: p.hash.length,
        memory: p.memory,
        passes: p.passes,
      },
      (err, out) => (err ? reject(err) : resolve(out)),
    ),
  );
}

async function matches(password: string, p: Phc): Promise<boolean> {
  const got = await argon2id(password, p);
  return got.length === p.hash.length && timingSafeEqual(got, p.hash);
}

interface Record {
  failures: number[];
  blockedUntil: number;
  blocks: number;
  lastBlockEnd: number;
}

export type AuthOutcome =
  { ok: true; user: string } | { ok: false; reason: "bad-credentials" } | { ok: false; reason: "blocked"; retryAfterSeconds: number };

export class SubmissionAuthenticator {
  private readonly byIp = new Map<string, Record>();
  private readonly byAccount = new Map<string, Record>();
  /** account -> client keys that logged in successfully (most recent last) */
  private readonly knownGood = new Map<string, Map<string, number>>();
  private readonly dummy: Phc;

  constructor(
    private readonly users: () => UserConfig[],
    private readonly limits: () => SubmissionConfig,
    private readonly now: () => number = Date.now,
  ) {
    // Cost of a check for an unknown account: the same as for the first user's hash.
    this.dummy = { memory: 19456, passes: 2, parallelism: 1, salt: randomBytes(16), hash: randomBytes(32) };
  }

  async authenticate(username: string, password: string, ip: string): Promise<AuthOutcome> {
    const account = username.trim().toLowerCase();
    const client = clientKey(ip);
    const now = this.now();
    const known = this.knownGood.get(account)?.has(client) ?? false;
    const blockedFor = Math.max(this.remaining(this.byIp.get(client), now), known ? 0 : this.remaining(this.byAccount.get(account), now));
    if (blockedFor > 0) {
      authResults.inc({ result: "blocked" });
      return { ok: false, reason: "blocked", retryAfterSeconds: Math.ceil(blockedFor / 1000) };
    }
    const user = this.users().find((u) => u.address === account);
    const ok = user
      ? await matches(password, readArgon2id(user.passwordHash))
      : await matches(password, this.dummyLike()).then(() => false);
    if (ok) {
      authResults.inc({ result: "ok" });
      let map = this.knownGood.get(account);
      if (!map) this.knownGood.set(account, (map = new Map()));
      map.delete(client);
      map.set(client, now);
      // A bounded memory per account: the 32 most recent client addresses.
      if (map.size > 32) map.delete(map.keys().next().value as string);
      return { ok: true, user: account };
    }
    authResults.inc({ result: "failed" });
    const l = this.limits();
    this.fail(this.byIp, client, l.maxFailuresPerIp, now);
    if (!known) this.fail(this.byAccount, account, l.maxFailuresPerAccount, now);
    return { ok: false, reason: "bad-credentials" };
  }

  /** A hash nobody's password matches, as costly to check as a real user's. */
  private dummyLike(): Phc {
    const first = this.users()[0];
    if (!first) return this.dummy;
    const p = readArgon2id(first.passwordHash);
    return { ...this.dummy, memory: p.memory, passes: p.passes, parallelism: p.parallelism };
  }

  private remaining(r: Record | undefined, now: number): number {
    return r && r.blockedUntil > now ? r.blockedUntil - now : 0;
  }

  private fail(table: Map<string, Record>, key: string, max: number, now: number): void {
    const l = this.limits();
    const windowMs = l.failureWindowSeconds * 1000;
    let r = table.get(key);
    if (!r) table.set(key, (r = { failures: [], blockedUntil: 0, blocks: 0, lastBlockEnd: 0 }));
    r.failures = r.failures.filter((t) => now - t < windowMs);
    r.failures.push(now);
    if (r.failures.length < max) return;
    // A block long ago (more than a window of quiet after it ended) does not count any more.
    if (r.lastBlockEnd > 0 && now - r.lastBlockEnd > windowMs + l.lockoutMaxSeconds * 1000) r.blocks = 0;
    const seconds = Math.min(l.lockoutSeconds * 2 ** r.blocks, l.lockoutMaxSeconds);
    r.blocks++;
    r.blockedUntil = now + seconds * 1000;
    r.lastBlockEnd = r.blockedUntil;
    r.failures = [];
  }

  /** Forgets state that can no longer matter, so the tables stay small. */
  sweep(): void {
    const now = this.now();
    const l = this.limits();
    const keep = (l.failureWindowSeconds + l.lockoutMaxSeconds) * 1000;
    for (const table of [this.byIp, this.byAccount]) {
      for (const [k, r] of table) {
        if (r.blockedUntil < now && now - Math.max(r.lastBlockEnd, r.failures[r.failures.length - 1] ?? 0) > keep) table.delete(k);
      }
    }
  }
}
