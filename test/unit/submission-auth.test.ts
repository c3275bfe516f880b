// The submission login throttle (server-bootstrap/maild/submission-auth.ts) with a fake clock:
// guessing is blocked per address and per account, the owner's known clients keep working while
// the account is attacked, and every block ends.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { argon2Sync, randomBytes } from "node:crypto";
import { SubmissionAuthenticator } from "../../server-bootstrap/maild/submission-auth";
import { clientKey } from "../../server-bootstrap/maild/client-key";
import { DEFAULT_SUBMISSION, type SubmissionConfig } from "../../server-bootstrap/maild/config";

function phc(password: string): string {
  const salt = randomBytes(16);
  const b64 = (b: Buffer) => b.toString("base64").replace(/=+$/, "");
  // small cost: the throttle, not argon2, is under test
  const hash = argon2Sync("argon2id", { message: password, nonce: salt, parallelism: 1, tagLength: 32, memory: 64, passes: 1 });
  return `$argon2id$v=19$m=64,t=1,p=1$${b64(salt)}$${b64(hash)}`;
}

const users = [{ address: "alice@example.org", passwordHash: phc("right") }];
const limits: SubmissionConfig = {
  ...DEFAULT_SUBMISSION,
  maxFailuresPerIp: 3,
  maxFailuresPerAccount: 5,
  failureWindowSeconds: 600,
  lockoutSeconds: 60,
  lockoutMaxSeconds: 240,
};

function setup() {
  let now = 1_000_000;
  const auth = SubmissionAuthenticator.standalone(
    () => users,
    () => limits,
    () => now,
  );
  return { auth, advance: (s: number) => (now += s * 1000) };
}

describe("submission authentication", () => {
  test("the right password logs in (case-insensitive account name); a wrong one and an unknown account do not", async () => {
    const { auth } = setup();
    assert.deepEqual(await auth.authenticate("Alice@Example.org", "right", "198.51.100.9"), { ok: true, user: "alice@example.org" });
    assert.deepEqual(await auth.authenticate("alice@example.org", "wrong", "198.51.100.9"), { ok: false, reason: "bad-credentials" });
    assert.deepEqual(await auth.authenticate("nobody@example.org", "right", "198.51.100.9"), { ok: false, reason: "bad-credentials" });
  });

  test("an address that keeps failing is blocked, even for the right password, until the block ends", async () => {
    const { auth, advance } = setup();
    for (let i = 0; i < 3; i++) assert.equal((await auth.authenticate("alice@example.org", "guess" + i, "203.0.113.7")).ok, false);
    const blocked = await auth.authenticate("alice@example.org", "right", "203.0.113.7");
    assert.deepEqual(blocked, { ok: false, reason: "blocked", retryAfterSeconds: 60 });
    advance(61);
    assert.equal((await auth.authenticate("alice@example.org", "right", "203.0.113.7")).ok, true);
  });

  test("repeated blocks double up to the cap and no further", async () => {
    const { auth, advance } = setup();
    const seen: number[] = [];
    for (let round = 0; round < 5; round++) {
      // a new account name each time, so only the address's record counts
      for (let i = 0; i < 3; i++) await auth.authenticate(`guess${round}-${i}@example.org`, "x", "203.0.113.8");
      const r = await auth.authenticate(`guess${round}@example.org`, "x", "203.0.113.8");
      assert.equal(r.ok, false);
      seen.push(r.ok === false && r.reason === "blocked" ? r.retryAfterSeconds : -1);
      advance(seen[seen.length - 1] + 1);
    }
    assert.deepEqual(seen, [60, 120, 240, 240, 240]);
  });

  test("one IPv6 /64 counts as one client", async () => {
    const { auth } = setup();
    for (let i = 1; i <= 3; i++) await auth.authenticate("alice@example.org", "x", `2001:db8:5:6::${i}`);
    const r = await auth.authenticate("alice@example.org", "right", "2001:db8:5:6:ffff::1");
    assert.equal(r.ok === false && r.reason, "blocked");
    assert.equal(clientKey("2001:db8:5:6:ffff::1"), "2001:0db8:0005:0006::/64");
    assert.equal(clientKey("::ffff:198.51.100.4"), "198.51.100.4");
  });

  test("a distributed guess throttles the account for new clients, never for the owner's known ones", async () => {
    const { auth, advance } = setup();
    assert.equal((await auth.authenticate("alice@example.org", "right", "198.51.100.20")).ok, true); // the owner's laptop
    for (let i = 0; i < 5; i++) await auth.authenticate("alice@example.org", "guess", `203.0.113.${100 + i}`); // one try per attacker address
    const fresh = await auth.authenticate("alice@example.org", "right", "198.51.100.21");
    assert.equal(fresh.ok === false && fresh.reason, "blocked", "a new client waits while the account is under attack");
    assert.equal((await auth.authenticate("alice@example.org", "right", "198.51.100.20")).ok, true, "the known client is not locked out");
    advance(61);
    assert.equal((await auth.authenticate("alice@example.org", "right", "198.51.100.21")).ok, true, "and the block ends");
  });

  test("sweep forgets old records, so a long quiet period starts from scratch", async () => {
    const { auth, advance } = setup();
    for (let i = 0; i < 3; i++) await auth.authenticate("alice@example.org", "x", "203.0.113.9");
    advance(60 + 600 + 240 + 1);
    auth.sweep();
    for (let i = 0; i < 3; i++) await auth.authenticate("alice@example.org", "x", "203.0.113.9");
    const r = await auth.authenticate("alice@example.org", "x", "203.0.113.9");
    assert.deepEqual(r, { ok: false, reason: "blocked", retryAfterSeconds: 60 }, "first-block length again");
  });
});
