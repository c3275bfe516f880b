import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { sharedStatfs } from "../../server-bootstrap/maild/storage-policy";

/** A statfs stand-in whose calls the test finishes one by one, each answering its own number. */
function controlledReads() {
  const calls: { dir: string; finish: (free: number) => void }[] = [];
  const read = (dir: string) => new Promise<number>((resolve) => calls.push({ dir, finish: resolve }));
  return { calls, read };
}

describe("maild free-space reading shared by concurrent messages", () => {
  test("callers during one statfs share the next one, which begins after their calls", async () => {
    const { calls, read } = controlledReads();
    const free = sharedStatfs(read);
    const first = free("/data");
    assert.equal(calls.length, 1);
    const during = [free("/data"), free("/data"), free("/data")];
    // they do not join the statfs already under way: it began before they asked
    assert.equal(calls.length, 1);
    calls[0].finish(100);
    assert.equal(await first, 100);
    await new Promise((r) => setImmediate(r));
    assert.equal(calls.length, 2);
    calls[1].finish(90);
    assert.deepEqual(await Promise.all(during), [90, 90, 90]);
  });

  test("a caller after a statfs finished starts a new one; other directories are read apart", async () => {
    const { calls, read } = controlledReads();
    const free = sharedStatfs(read);
    const a = free("/data");
    calls[0].finish(1);
    await a;
    const b = free("/data");
    const other = free("/other");
    assert.deepEqual(
      calls.map((c) => c.dir),
      ["/data", "/data", "/other"],
    );
    calls[1].finish(2);
    calls[2].finish(3);
    assert.deepEqual([await b, await other], [2, 3]);
  });

  test("a failed statfs fails its own callers only; the next callers get a new reading", async () => {
    const calls: { fail: (e: Error) => void; finish: (n: number) => void }[] = [];
    const free = sharedStatfs(() => new Promise<number>((finish, fail) => calls.push({ finish, fail })));
    const first = free("/data");
    const next = free("/data");
    calls[0].fail(new Error("EIO"));
    await assert.rejects(first, /EIO/);
    await new Promise((r) => setImmediate(r));
    calls[1].finish(7);
    assert.equal(await next, 7);
  });
});
