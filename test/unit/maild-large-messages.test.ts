import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { LargeMessageBusy, LargeMessageTurns } from "../../server-bootstrap/maild/large-messages";

const limits = { largeMessageBytes: 1000, largeMessageConcurrency: 2 };

describe("large messages take turns after their final dot", () => {
  test("a message under largeMessageBytes never waits, however many large ones are under way", async () => {
    const turns = new LargeMessageTurns(() => limits);
    const large = await Promise.all([turns.begin(5000), turns.begin(5000)]);
    const pending = turns.begin(5000);
    const small = await turns.begin(999);
    assert.equal(turns.queued, 1, "the third large one waits");
    small();
    for (const end of large) end();
    (await pending)();
  });

  test("large messages start in arrival order, at most largeMessageConcurrency at a time", async () => {
    const turns = new LargeMessageTurns(() => limits);
    let running = 0;
    let most = 0;
    const order: number[] = [];
    const work = async (i: number) => {
      const end = await turns.begin(1000);
      order.push(i);
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setTimeout(r, 5));
      running--;
      end();
    };
    await Promise.all(Array.from({ length: 8 }, (_, i) => work(i)));
    assert.equal(most, 2);
    assert.deepEqual(order, [0, 1, 2, 3, 4, 5, 6, 7]);
  });

  test("a turn handed over is not taken by a newcomer in between", async () => {
    const turns = new LargeMessageTurns(() => ({ ...limits, largeMessageConcurrency: 1 }));
    const first = await turns.begin(5000);
    let secondStarted = false;
    const second = turns.begin(5000).then((end) => {
      secondStarted = true;
      return end;
    });
    first();
    // a newcomer right after the hand-over must queue behind the second
    const third = turns.begin(5000);
    assert.equal(turns.queued, 1);
    (await second)();
    assert.ok(secondStarted);
    (await third)();
  });

  test("a large message without a turn in maxWaitMs is refused with LargeMessageBusy and leaves the queue", async () => {
    const turns = new LargeMessageTurns(() => ({ ...limits, largeMessageConcurrency: 1 }), 30);
    const end = await turns.begin(5000);
    await assert.rejects(turns.begin(5000), LargeMessageBusy);
    assert.equal(turns.queued, 0);
    end();
    (await turns.begin(5000))();
  });

  test("ending a turn twice frees one place only", async () => {
    const turns = new LargeMessageTurns(() => ({ ...limits, largeMessageConcurrency: 1 }));
    const end = await turns.begin(5000);
    end();
    end();
    const a = await turns.begin(5000);
    const b = turns.begin(5000);
    assert.equal(turns.queued, 1);
    a();
    (await b)();
  });
});
