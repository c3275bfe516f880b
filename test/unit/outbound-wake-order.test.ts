import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { WakeOrder } from "../../server-bootstrap/maild/outbound/wake-order";

describe("the queue's wake order", () => {
  test("ids come out due, earliest first, and equal times in the order they were scheduled", () => {
    const w = new WakeOrder();
    w.set("c", 30);
    w.set("a", 10);
    w.set("b1", 20);
    w.set("b2", 20);
    w.set("later", 100);
    const out: string[] = [];
    for (let id = w.popDue(50); id !== undefined; id = w.popDue(50)) out.push(id);
    assert.deepEqual(out, ["a", "b1", "b2", "c"]);
    assert.deepEqual(w.peek(), { id: "later", at: 100 });
    assert.equal(w.popDue(99), undefined);
  });

  test("rescheduling an id replaces its earlier time; deleting it removes it", () => {
    const w = new WakeOrder();
    w.set("x", 10);
    w.set("y", 20);
    w.set("x", 50);
    w.delete("y");
    assert.equal(w.size, 1);
    assert.equal(w.popDue(40), undefined);
    assert.deepEqual(w.peek(), { id: "x", at: 50 });
    assert.equal(w.popDue(50), "x");
    assert.equal(w.peek(), undefined);
  });

  test("many ids in random order come out sorted, with stale nodes dropped along the way", () => {
    const w = new WakeOrder();
    const times = new Map<string, number>();
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 1e6;
    for (let i = 0; i < 5000; i++) {
      const id = `m${i % 2000}`;
      const at = Math.floor(random());
      w.set(id, at);
      times.set(id, at);
    }
    assert.equal(w.size, 2000);
    const out: number[] = [];
    for (let id = w.popDue(Infinity); id !== undefined; id = w.popDue(Infinity)) out.push(times.get(id)!);
    assert.equal(out.length, 2000);
    assert.deepEqual(
      out,
      [...out].sort((a, b) => a - b),
    );
  });
});
