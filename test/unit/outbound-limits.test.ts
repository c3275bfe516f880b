import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { ConnectionSlots } from "../../server-bootstrap/maild/outbound/connection-limits";

/** Whether a promise has settled by the time queued microtasks and immediates have run. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  return done;
}

describe("outbound connection slots", () => {
  test("a domain gets at most perDomain connections; the next one waits until one is released", async () => {
    const slots = new ConnectionSlots(() => ({ perDomain: 2, total: 10 }));
    const a = await slots.acquire("example.org");
    await slots.acquire("example.org");
    const third = slots.acquire("example.org");
    assert.equal(await settled(third), false);
    assert.equal(slots.waiting, 1);
    a();
    assert.equal(await settled(third), true);
    assert.equal(slots.active("example.org"), 2);
    assert.equal(slots.waiting, 0);
  });

  test("a full domain does not hold up other domains", async () => {
    const slots = new ConnectionSlots(() => ({ perDomain: 1, total: 10 }));
    await slots.acquire("busy.example");
    const blocked = slots.acquire("busy.example");
    const other = slots.acquire("other.example");
    assert.equal(await settled(other), true);
    assert.equal(await settled(blocked), false);
  });

  test("the total limit applies across domains, and waiters are admitted first come, first served", async () => {
    const slots = new ConnectionSlots(() => ({ perDomain: 5, total: 2 }));
    const r1 = await slots.acquire("a.example");
    await slots.acquire("b.example");
    const order: string[] = [];
    const c = slots.acquire("c.example").then((r) => (order.push("c"), r));
    const d = slots.acquire("d.example").then((r) => (order.push("d"), r));
    assert.equal(await settled(c), false);
    r1();
    await settled(c);
    assert.deepEqual(order, ["c"]);
    assert.equal(await settled(d), false);
    (await c)();
    await settled(d);
    assert.deepEqual(order, ["c", "d"]);
    assert.equal(slots.active(), 2);
  });

  test("releasing twice frees one slot only", async () => {
    const slots = new ConnectionSlots(() => ({ perDomain: 1, total: 1 }));
    const r = await slots.acquire("x.example");
    r();
    r();
    assert.equal(slots.active(), 0);
    await slots.acquire("x.example");
    const next = slots.acquire("x.example");
    assert.equal(await settled(next), false);
    assert.equal(slots.active(), 1);
  });

  test("a waiter that withdraws (abort) leaves the line: rejected, and the slot goes to the next one", async () => {
    const slots = new ConnectionSlots(() => ({ perDomain: 1, total: 10 }));
    const r = await slots.acquire("x.example");
    const abort = new AbortController();
    const withdrawn = slots.acquire("x.example", abort.signal);
    const next = slots.acquire("x.example");
    abort.abort(new Error("handed an open connection"));
    await assert.rejects(withdrawn, /handed an open connection/);
    assert.equal(slots.waiting, 1);
    r();
    assert.equal(await settled(next), true);
    assert.equal(slots.active("x.example"), 1);
  });

  test("a waiter that does not fit asks for room ('domain' when its domain is full, else 'total') until room is being made for it", async () => {
    const asked: string[] = [];
    let making = false;
    const slots = new ConnectionSlots(
      () => ({ perDomain: 1, total: 2 }),
      (domain, scope) => {
        asked.push(`${domain} ${scope}`);
        return making;
      },
    );
    const a = await slots.acquire("a.example");
    void slots.acquire("a.example");
    await slots.acquire("b.example");
    void slots.acquire("c.example");
    assert.deepEqual(asked, ["a.example domain", "a.example domain", "a.example domain", "c.example total"], "each look at the line");
    making = true;
    slots.recheck();
    slots.recheck();
    assert.deepEqual(asked.slice(4), ["a.example domain", "c.example total"], "once room is being made, not again");
    a();
    assert.deepEqual(
      asked.slice(6),
      ["c.example total"],
      "a release admitted a.example's waiter; c.example's, still waiting, is asked afresh",
    );
  });

  test("limits are read at every decision, so a raised limit admits waiters at the next release", async () => {
    let perDomain = 1;
    const slots = new ConnectionSlots(() => ({ perDomain, total: 10 }));
    const r = await slots.acquire("x.example");
    const w1 = slots.acquire("x.example");
    const w2 = slots.acquire("x.example");
    perDomain = 3;
    r();
    assert.equal(await settled(w1), true);
    assert.equal(await settled(w2), true);
    assert.equal(slots.active("x.example"), 2);
  });
});
