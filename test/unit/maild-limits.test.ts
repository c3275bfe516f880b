import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { ConnectionLimiter, RateLimiter } from "../../server-bootstrap/maild/client-limits";

describe("maild connection limits", () => {
  test("a client address gets at most perIp concurrent connections, others are unaffected", () => {
    const l = new ConnectionLimiter(() => ({ perIp: 2, total: 100 }));
    assert.equal(l.tryOpen("198.51.100.9"), true);
    assert.equal(l.tryOpen("198.51.100.9"), true);
    assert.equal(l.tryOpen("198.51.100.9"), "per-ip");
    assert.equal(l.tryOpen("198.51.100.10"), true);
  });
  test("closing a connection frees its slot", () => {
    const l = new ConnectionLimiter(() => ({ perIp: 1, total: 100 }));
    assert.equal(l.tryOpen("a"), true);
    l.close("a");
    assert.equal(l.tryOpen("a"), true);
    assert.equal(l.total, 1);
  });
  test("the total limit applies across addresses", () => {
    const l = new ConnectionLimiter(() => ({ perIp: 5, total: 2 }));
    assert.equal(l.tryOpen("a"), true);
    assert.equal(l.tryOpen("b"), true);
    assert.equal(l.tryOpen("c"), "total");
  });
});

describe("maild message rate limit", () => {
  test("a client may send the per-minute limit at once, then no more", () => {
    const now = 0;
    const r = new RateLimiter(
      () => 3,
      () => now,
    );
    assert.deepEqual([r.take("a"), r.take("a"), r.take("a"), r.take("a")], [true, true, true, false]);
    assert.equal(r.take("b"), true);
  });
  test("the allowance refills at the limit's rate", () => {
    let now = 0;
    const r = new RateLimiter(
      () => 60,
      () => now,
    );
    for (let i = 0; i < 60; i++) assert.equal(r.take("a"), true);
    assert.equal(r.take("a"), false);
    now = 1000;
    assert.equal(r.take("a"), true);
    assert.equal(r.take("a"), false);
  });
});
