// The outbound connection cache's rules (server-bootstrap/maild/outbound/connection-cache.ts):
// which attempt may reuse a connection, the caps that idle connections count against, and when a
// connection is closed. Connections here are plain objects; what the transport does with them
// (the RSET probe, a fresh connection when a cached one turns out broken) is in
// outbound-transport.test.ts.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { ConnectionCache, type CacheLimits, type CachedConnection } from "../../server-bootstrap/maild/outbound/connection-cache";

interface Conn {
  id: number;
}

/** Whether a promise has settled by the time queued microtasks and immediates have run. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  return done;
}

function harness(limits: Partial<CacheLimits> = {}) {
  const clock = { t: 1_000_000 };
  const closed: number[] = [];
  const idle = new Map<number, boolean>();
  const current: CacheLimits = { perDomain: 2, total: 4, idleMs: 2000, maxMessages: 100, maxAgeMs: 300_000, ...limits };
  let nextId = 1;
  const cache = new ConnectionCache<Conn>({
    limits: () => current,
    close: async (c) => {
      closed.push(c.id);
    },
    setIdle: (c, isIdle) => idle.set(c.id, isIdle),
    now: () => clock.t,
  });
  /** what the transport does with an "open" lease: a new connection, busy with its first transaction */
  const open = async (domain: string, key: string): Promise<CachedConnection<Conn>> => {
    const lease = await cache.acquire(domain, key);
    assert.equal(lease.kind, "open");
    if (lease.kind !== "open") throw new Error("unreachable");
    const c = cache.add({ id: nextId++ }, domain, key, clock.t, lease.release);
    c.transactions++;
    return c;
  };
  return { cache, clock, closed, idle, limits: current, open };
}

describe("outbound connection cache: reuse", () => {
  test("a connection whose transaction ended is taken again for its key, and for no other key", async () => {
    const h = harness();
    const c = await h.open("a.example", "a.example|mx1|none");
    h.cache.checkIn(c, true);
    assert.equal(h.idle.get(c.conn.id), true, "idle: its socket no longer keeps the process alive");

    const otherPolicy = await h.cache.acquire("a.example", "a.example|mx1|sts");
    assert.equal(otherPolicy.kind, "open", "another TLS policy (another key) gets a new connection");
    const same = await h.cache.acquire("a.example", "a.example|mx1|none");
    assert.equal(same.kind, "reuse");
    assert.equal(same.kind === "reuse" && same.connection, c);
    assert.equal(h.idle.get(c.conn.id), false);
    assert.equal(h.cache.slots.active("a.example"), 2, "the reused connection kept its slot; the new one took another");
    assert.deepEqual(h.closed, []);
  });

  test("of several idle connections for a key, the one used last is taken, so surplus ones reach their idle limit", async () => {
    const h = harness();
    const first = await h.open("a.example", "k");
    const second = await h.open("a.example", "k");
    h.cache.checkIn(first, true);
    h.clock.t += 100;
    h.cache.checkIn(second, true);
    const lease = await h.cache.acquire("a.example", "k");
    assert.equal(lease.kind === "reuse" && lease.connection, second);
  });

  test("an attempt waiting for its key gets the connection handed over as its transaction ends, ahead of the line for slots", async () => {
    const h = harness({ perDomain: 1 });
    const c = await h.open("a.example", "k");
    const waiting = h.cache.acquire("a.example", "k");
    assert.equal(await settled(waiting), false, "the domain's one slot is taken");
    assert.equal(h.cache.slots.waiting, 1);
    h.cache.checkIn(c, true);
    const lease = await waiting;
    assert.equal(lease.kind === "reuse" && lease.connection, c);
    assert.equal(h.cache.slots.waiting, 0, "its wait for a slot was withdrawn");
    assert.equal(h.cache.slots.active(), 1);
    assert.equal(h.cache.idleCount(), 0);
  });
});

describe("outbound connection cache: closing", () => {
  test("a connection that is not reusable is closed at check-in, and its slot is free once it is closed", async () => {
    const h = harness({ perDomain: 1 });
    const c = await h.open("a.example", "k");
    const next = h.cache.acquire("a.example", "k");
    h.cache.checkIn(c, false);
    const lease = await next;
    assert.equal(lease.kind, "open");
    assert.deepEqual(h.closed, [c.conn.id]);
  });

  test("after maxMessages transactions a connection is closed instead of kept", async () => {
    const h = harness({ maxMessages: 2 });
    const c = await h.open("a.example", "k");
    h.cache.checkIn(c, true);
    const again = await h.cache.acquire("a.example", "k");
    assert.equal(again.kind, "reuse");
    c.transactions++;
    h.cache.checkIn(c, true);
    assert.deepEqual(h.closed, [c.conn.id]);
    assert.equal(h.cache.idleCount(), 0);
  });

  test("no transaction begins on a connection older than maxAgeMs: closed at check-in, or when found idle", async () => {
    const h = harness({ maxAgeMs: 10_000, idleMs: 60_000 });
    const old = await h.open("a.example", "k");
    h.clock.t += 10_000;
    h.cache.checkIn(old, true);
    assert.deepEqual(h.closed, [old.conn.id], "too old at check-in");

    const young = await h.open("a.example", "k");
    h.cache.checkIn(young, true);
    h.clock.t += 10_000;
    const lease = await h.cache.acquire("a.example", "k");
    assert.equal(lease.kind, "open", "the idle one had grown too old: a new connection");
    assert.deepEqual(h.closed, [old.conn.id, young.conn.id]);
  });

  test("an idle connection is closed after idleMs and its slot is free again", async (t) => {
    t.mock.timers.enable({ apis: ["setTimeout"] });
    const h = harness({ idleMs: 2000, perDomain: 1 });
    const c = await h.open("a.example", "k");
    h.cache.checkIn(c, true);
    t.mock.timers.tick(1999);
    assert.equal(h.cache.idleCount(), 1);
    t.mock.timers.tick(1);
    assert.equal(h.cache.idleCount(), 0);
    assert.deepEqual(h.closed, [c.conn.id]);
    await settled(Promise.resolve());
    assert.equal(h.cache.slots.active(), 0);
  });

  test("the idle time never takes a connection past maxAgeMs", async (t) => {
    t.mock.timers.enable({ apis: ["setTimeout"] });
    const h = harness({ idleMs: 2000, maxAgeMs: 5000 });
    const c = await h.open("a.example", "k");
    h.clock.t += 4000;
    h.cache.checkIn(c, true);
    t.mock.timers.tick(999);
    assert.equal(h.cache.idleCount(), 1);
    t.mock.timers.tick(1);
    assert.deepEqual(h.closed, [c.conn.id]);
  });

  test("idleMs 0 keeps no connection", async () => {
    const h = harness({ idleMs: 0 });
    const c = await h.open("a.example", "k");
    h.cache.checkIn(c, true);
    assert.deepEqual(h.closed, [c.conn.id]);
  });

  test("an idle connection the server closed is forgotten and frees its slot; a busy one waits for its transaction", async () => {
    const h = harness({ perDomain: 1 });
    const c = await h.open("a.example", "k");
    h.cache.lost(c);
    assert.equal(h.cache.slots.active(), 1, "busy: the transport finds out and checks it in");
    h.cache.checkIn(c, true);
    h.cache.lost(c);
    assert.equal(h.cache.idleCount(), 0);
    assert.equal(h.cache.slots.active(), 0);
    assert.deepEqual(h.closed, [], "nothing left to close");
    const lease = await h.cache.acquire("a.example", "k");
    assert.equal(lease.kind, "open");
  });

  test("at shutdown the idle connections are closed, and a busy one when its transaction ends", async () => {
    const h = harness();
    const idle = await h.open("a.example", "k");
    const busy = await h.open("b.example", "k2");
    h.cache.checkIn(idle, true);
    await h.cache.close();
    assert.deepEqual(h.closed, [idle.conn.id]);
    h.cache.checkIn(busy, true);
    assert.deepEqual(h.closed, [idle.conn.id, busy.conn.id]);
    assert.equal(h.cache.idleCount(), 0);
  });
});

describe("outbound connection cache: caps", () => {
  test("idle connections count against perDomain; one of another key is closed for a waiter it stands in the way of", async () => {
    const h = harness({ perDomain: 2, total: 10 });
    const a = await h.open("a.example", "mx1");
    const b = await h.open("a.example", "mx1");
    h.clock.t += 10;
    h.cache.checkIn(b, true);
    h.clock.t += 10;
    h.cache.checkIn(a, true);
    assert.equal(h.cache.slots.active("a.example"), 2);
    // another MX host of the same domain (say the first one went away): its own key
    const lease = await h.cache.acquire("a.example", "mx2");
    assert.equal(lease.kind, "open");
    assert.deepEqual(h.closed, [b.conn.id], "the connection idle longest made room");
    assert.equal(h.cache.slots.active("a.example"), 2, "never more than perDomain open");
  });

  test("idle connections count against the total; any domain's idle connection is closed for a waiter", async () => {
    const h = harness({ perDomain: 5, total: 2 });
    const a = await h.open("a.example", "ka");
    const b = await h.open("b.example", "kb");
    h.cache.checkIn(a, true);
    const c = h.cache.acquire("c.example", "kc");
    assert.equal(await settled(c), true, "room made at once: a's idle connection closed");
    assert.deepEqual(h.closed, [a.conn.id]);
    const d = h.cache.acquire("d.example", "kd");
    assert.equal(await settled(d), false, "b is busy: nothing to close, d waits");
    h.cache.checkIn(b, true);
    assert.equal(await settled(d), true, "b went idle with d waiting: closed for it");
    assert.deepEqual(h.closed, [a.conn.id, b.conn.id]);
    assert.equal(h.cache.slots.active(), 2);
  });

  test("a domain at perDomain with only busy connections makes its waiters wait, whatever is idle elsewhere", async () => {
    const h = harness({ perDomain: 1, total: 10 });
    await h.open("a.example", "ka");
    const other = await h.open("b.example", "kb");
    h.cache.checkIn(other, true);
    const waiting = h.cache.acquire("a.example", "ka2");
    assert.equal(await settled(waiting), false);
    assert.deepEqual(h.closed, [], "closing b.example's connection would not help a.example");
  });
});
