// The login throttle SMTP AUTH and IMAP share (server-bootstrap/maild/login-throttle.ts), with a
// fake clock, and the file that keeps it across restarts.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LoginStateFile, LoginThrottle } from "../../server-bootstrap/maild/login-throttle";
import { DEFAULT_SUBMISSION, type SubmissionConfig } from "../../server-bootstrap/maild/config";

const limits: SubmissionConfig = {
  ...DEFAULT_SUBMISSION,
  maxFailuresPerIp: 3,
  maxFailuresPerAccount: 5,
  failureWindowSeconds: 600,
  lockoutSeconds: 60,
  lockoutMaxSeconds: 240,
  knownClientDelaySeconds: 10,
};

function setup(start = 1_000_000_000) {
  const clock = { t: start };
  const throttle = new LoginThrottle(
    () => limits,
    () => clock.t,
  );
  return { throttle, clock, advance: (s: number) => (clock.t += s * 1000) };
}

const OWNER_HOME = "198.51.100.20";
const ALICE = "alice@example.org";

describe("login throttle: the owner's known clients", () => {
  test("a client that logged in before is never blocked from that account, whatever else fails", () => {
    const { throttle } = setup();
    throttle.recordSuccess(ALICE, OWNER_HOME);
    // the same address fails on other accounts until it is blocked as a client
    for (let i = 0; i < 3; i++) throttle.recordFailure(`other${i}@example.org`, OWNER_HOME);
    assert.equal(throttle.check("bob@example.org", OWNER_HOME).allow, false, "blocked for accounts it never logged in to");
    // and a distributed guess blocks the account for new clients
    for (let i = 0; i < 5; i++) throttle.recordFailure(ALICE, `203.0.113.${i}`);
    assert.equal(throttle.check(ALICE, "198.51.100.99").allow, false);
    assert.deepEqual(throttle.check(ALICE, OWNER_HOME), { allow: true, delayMs: 0 });
  });

  test("a known client's own failures past the budget space its attempts apart, never refuse them", () => {
    const { throttle, advance } = setup();
    throttle.recordSuccess(ALICE, OWNER_HOME);
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(throttle.check(ALICE, OWNER_HOME), { allow: true, delayMs: 0 });
      throttle.recordFailure(ALICE, OWNER_HOME);
    }
    // three attempts at once: one now, then one every 10 s
    assert.deepEqual(
      [1, 2, 3].map(() => throttle.check(ALICE, OWNER_HOME)),
      [
        { allow: true, delayMs: 0 },
        { allow: true, delayMs: 10_000 },
        { allow: true, delayMs: 20_000 },
      ],
    );
    advance(600);
    assert.deepEqual(throttle.check(ALICE, OWNER_HOME), { allow: true, delayMs: 0 }, "the window passed: no spacing");
  });

  test("a success clears the known client's failures", () => {
    const { throttle } = setup();
    throttle.recordSuccess(ALICE, OWNER_HOME);
    for (let i = 0; i < 3; i++) throttle.recordFailure(ALICE, OWNER_HOME);
    throttle.recordSuccess(ALICE, OWNER_HOME);
    assert.deepEqual(throttle.check(ALICE, OWNER_HOME), { allow: true, delayMs: 0 });
    assert.deepEqual(throttle.check(ALICE, OWNER_HOME), { allow: true, delayMs: 0 });
  });

  test("known means this account: another account from the owner's address is throttled as usual", () => {
    const { throttle } = setup();
    throttle.recordSuccess(ALICE, OWNER_HOME);
    for (let i = 0; i < 3; i++) throttle.recordFailure("bob@example.org", OWNER_HOME);
    assert.equal(throttle.check("bob@example.org", OWNER_HOME).allow, false);
  });

  test("one IPv6 /64 is one client, for knowing as for blocking", () => {
    const { throttle } = setup();
    throttle.recordSuccess(ALICE, "2001:db8:1:2::10");
    for (let i = 0; i < 5; i++) throttle.recordFailure(ALICE, `2001:db8:9:${i}::1`);
    assert.deepEqual(throttle.check(ALICE, "2001:db8:1:2:aaaa::77"), { allow: true, delayMs: 0 });
    assert.equal(throttle.check(ALICE, "2001:db8:1:3::10").allow, false);
  });

  test("the 32 most recent clients of an account are kept; a client unused for 400 days is forgotten", () => {
    const { throttle, advance } = setup();
    for (let i = 0; i < 33; i++) {
      throttle.recordSuccess(ALICE, `198.51.100.${i}`);
      advance(1);
    }
    for (let i = 0; i < 5; i++) throttle.recordFailure(ALICE, `203.0.113.${i}`);
    assert.equal(throttle.check(ALICE, "198.51.100.0").allow, false, "the oldest of 33 is gone");
    assert.equal(throttle.check(ALICE, "198.51.100.1").allow, true);
    advance(401 * 86_400);
    for (let i = 0; i < 5; i++) throttle.recordFailure(ALICE, `203.0.113.${i}`);
    assert.equal(throttle.check(ALICE, "198.51.100.32").allow, false, "not known any more");
  });
});

describe("login throttle: state kept across restarts", () => {
  function stateDir(): string {
    const d = mkdtempSync(join(tmpdir(), "maild-logins-"));
    process.once("exit", () => rmSync(d, { recursive: true, force: true }));
    return d;
  }

  test("after a restart the owner's known client still gets in during an attack, and the attacker is still blocked", async () => {
    const path = join(stateDir(), "state", "logins.json");
    const { throttle, clock } = setup();
    const errors: Error[] = [];
    const file = new LoginStateFile(
      path,
      () => throttle,
      (e) => errors.push(e),
    );
    throttle.recordSuccess(ALICE, OWNER_HOME);
    // the attack: a steady trickle from three addresses
    for (let i = 0; i < 6; i++) throttle.recordFailure(ALICE, `203.0.113.${i % 3}`);
    file.changed();
    await file.flush();
    assert.equal(errors.length, 0, errors.join("; "));

    const restarted = new LoginThrottle(
      () => limits,
      () => clock.t,
    );
    new LoginStateFile(
      path,
      () => restarted,
      (e) => errors.push(e),
    ).load(restarted);
    assert.deepEqual(restarted.check(ALICE, OWNER_HOME), { allow: true, delayMs: 0 }, "the owner's address is still known");
    assert.equal(restarted.check(ALICE, "203.0.113.0").allow, false, "the account block survived");
    assert.equal(restarted.check("bob@example.org", "203.0.113.1").allow, true, "a client block needs its own failures");
    assert.deepEqual(errors, []);
  });

  test("writes are debounced to one a second and land atomically as JSON", async () => {
    const path = join(stateDir(), "logins.json");
    const { throttle } = setup();
    const file = new LoginStateFile(
      path,
      () => throttle,
      (e) => {
        throw e;
      },
    );
    throttle.recordSuccess(ALICE, OWNER_HOME);
    file.changed();
    file.changed();
    await new Promise((r) => setTimeout(r, 1300));
    const saved = JSON.parse(readFileSync(path, "utf8")) as { version: number; known: Record<string, Record<string, number>> };
    assert.equal(saved.version, 1);
    assert.deepEqual(Object.keys(saved.known[ALICE]), [OWNER_HOME]);
  });

  test("an unreadable state file is reported and the throttle starts empty", () => {
    const path = join(stateDir(), "logins.json");
    writeFileSync(path, "{not json");
    const { throttle } = setup();
    const errors: Error[] = [];
    new LoginStateFile(
      path,
      () => throttle,
      (e) => errors.push(e),
    ).load(throttle);
    assert.equal(errors.length, 1);
    assert.match(errors[0].message, /logins\.json: .*starting with no login history/);
    assert.deepEqual(throttle.check(ALICE, OWNER_HOME), { allow: true, delayMs: 0 });
  });

  test("a missing state file is a first start, not an error", () => {
    const { throttle } = setup();
    const errors: Error[] = [];
    new LoginStateFile(
      join(stateDir(), "none.json"),
      () => throttle,
      (e) => errors.push(e),
    ).load(throttle);
    assert.deepEqual(errors, []);
  });
});
