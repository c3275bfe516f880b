import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_OUTBOUND } from "../../server-bootstrap/maild/config";
import {
  delayNoticeAt,
  expiresAt,
  isFinished,
  nextWake,
  retryDelayMs,
  unreportedFailures,
} from "../../server-bootstrap/maild/outbound/schedule";
import type { Envelope, RecipientState } from "../../server-bootstrap/maild/outbound/spool";

const cfg = {
  ...DEFAULT_OUTBOUND,
  retryBaseSeconds: 300,
  retryMaxSeconds: 3600,
  delayNoticeAfterSeconds: 4 * 3600,
  expireAfterSeconds: 5 * 86_400,
};
const T0 = Date.UTC(2025, 0, 6, 12);

function rcpt(state: RecipientState["state"], reported = false): RecipientState {
  return { address: `${state}@remote.test`, state, inFlight: false, reported, expired: false };
}

function env(over: Partial<Envelope> = {}): Envelope {
  return {
    version: 1,
    id: "1736164800.M000000000000000000000001",
    sender: "alice@example.org",
    size: 100,
    arrival: T0,
    attempts: 1,
    nextAttempt: T0 + 300_000,
    delayNoticeSent: false,
    recipients: [rcpt("pending")],
    ...over,
  };
}

describe("outbound schedule: backoff", () => {
  test("the n-th retry waits retryBase * 2^(n-1), capped at retryMax", () => {
    const none = () => 0;
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((n) => retryDelayMs(n, cfg, none)),
      [300_000, 600_000, 1_200_000, 2_400_000, 3_600_000, 3_600_000],
    );
    assert.equal(retryDelayMs(10_000, cfg, none), 3_600_000, "no overflow after many attempts");
  });

  test("jitter only shortens a delay, by at most a tenth", () => {
    assert.equal(
      retryDelayMs(1, cfg, () => 1),
      270_000,
    );
    assert.equal(
      retryDelayMs(9, cfg, () => 0.5),
      3_420_000,
    );
  });
});

describe("outbound schedule: deadlines", () => {
  test("expiry and the delay notice count from arrival", () => {
    assert.equal(expiresAt(env(), cfg), T0 + 5 * 86_400_000);
    assert.equal(delayNoticeAt(env(), cfg), T0 + 4 * 3_600_000);
  });

  test("no delay notice once sent, when disabled, for the null sender, or with nothing pending", () => {
    assert.equal(delayNoticeAt(env({ delayNoticeSent: true }), cfg), undefined);
    assert.equal(delayNoticeAt(env(), { ...cfg, delayNoticeAfterSeconds: 0 }), undefined);
    assert.equal(delayNoticeAt(env({ sender: "" }), cfg), undefined);
    assert.equal(delayNoticeAt(env({ recipients: [rcpt("delivered"), rcpt("failed")] }), cfg), undefined);
  });

  test("a message is finished when nothing is pending and every failure is reported (the null sender is never told)", () => {
    assert.equal(isFinished(env()), false);
    assert.equal(isFinished(env({ recipients: [rcpt("delivered"), rcpt("failed")] })), false);
    assert.deepEqual(
      unreportedFailures(env({ recipients: [rcpt("delivered"), rcpt("failed")] })).map((r) => r.address),
      ["failed@remote.test"],
    );
    assert.equal(isFinished(env({ recipients: [rcpt("delivered"), rcpt("failed", true)] })), true);
    assert.equal(isFinished(env({ sender: "", recipients: [rcpt("failed")] })), true);
  });

  test("the next wake is the earliest of next attempt, expiry, delay notice and an owed report", () => {
    assert.equal(nextWake(env(), cfg), T0 + 300_000);
    assert.equal(nextWake(env({ nextAttempt: T0 + 5 * 3_600_000 }), cfg), T0 + 4 * 3_600_000, "the delay notice comes due first");
    assert.equal(nextWake(env({ nextAttempt: T0 + 9 * 86_400_000, delayNoticeSent: true }), cfg), T0 + 5 * 86_400_000, "expiry");
    assert.equal(nextWake(env({ recipients: [rcpt("failed"), rcpt("pending")] }), cfg), 0, "a failure to report: now");
    assert.equal(
      nextWake(env({ recipients: [rcpt("failed"), rcpt("pending")] }), cfg, T0 + 60_000),
      T0 + 60_000,
      "unless its bounce failed",
    );
    assert.equal(nextWake(env({ nextAttempt: T0 + 5 * 3_600_000 }), cfg, T0 + 4.5 * 3_600_000), T0 + 4.5 * 3_600_000);
    assert.equal(
      nextWake(env({ recipients: [rcpt("delivered"), rcpt("failed", true)] }), cfg),
      0,
      "finished but not removed (a crash): now",
    );
  });
});
