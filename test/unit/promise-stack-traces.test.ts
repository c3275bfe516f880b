// The offline engine's saving on the Pulumi SDK's promise bookkeeping
// (infra/offline/promise-stack-traces.ts): no stack frames per tracked promise, and everything else
// runtime/debuggable.js debuggablePromise does (leak candidates, the settled value or error) kept.
import { test } from "node:test";
import assert from "node:assert/strict";
import { skipPromiseStackTraces } from "../../infra/offline/promise-stack-traces";

interface TrackedPromise {
  _debugStackTrace?: string;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const debuggable = require("@pulumi/pulumi/runtime/debuggable") as {
  debuggablePromise<T>(p: Promise<T>, ctx: unknown): Promise<T>;
  debugPromiseLeaks: boolean;
};
// eslint-disable-next-line @typescript-eslint/no-require-imports
const state = require("@pulumi/pulumi/runtime/state") as { getStore(): { leakCandidates: Set<Promise<unknown>> } };

const FRAME = /\n\s+at /;

skipPromiseStackTraces();

test("a tracked promise is a leak candidate until it resolves, with no stack frames captured", async () => {
  let resolve!: (value: string) => void;
  const promise = new Promise<string>((r) => (resolve = r));
  const tracked = debuggable.debuggablePromise(promise, "resolves");
  assert.equal(state.getStore().leakCandidates.has(promise), true);
  assert.equal((promise as TrackedPromise)._debugStackTrace, "Error");
  resolve("value");
  assert.equal(await tracked, "value");
  assert.equal(state.getStore().leakCandidates.has(promise), false);
});

test("a tracked promise that rejects leaves the leak candidates and passes its error on", async () => {
  const promise = Promise.reject(new Error("refused"));
  const tracked = debuggable.debuggablePromise(promise, "rejects");
  assert.equal(state.getStore().leakCandidates.has(promise), true);
  await assert.rejects(tracked, /refused/);
  assert.equal(state.getStore().leakCandidates.has(promise), false);
});

test("errors made after tracking a promise keep their stack frames", async () => {
  const limit = Error.stackTraceLimit;
  await debuggable.debuggablePromise(Promise.resolve(1), "restores");
  assert.equal(Error.stackTraceLimit, limit);
  assert.match(new Error("later").stack ?? "", FRAME);
});

test("with PULUMI_DEBUG_PROMISE_LEAKS (the SDK's debugPromiseLeaks) a tracked promise keeps its stack trace", async () => {
  debuggable.debugPromiseLeaks = true;
  try {
    const promise = Promise.resolve(1);
    await debuggable.debuggablePromise(promise, "debugging");
    assert.match((promise as TrackedPromise)._debugStackTrace ?? "", FRAME);
  } finally {
    debuggable.debugPromiseLeaks = false;
  }
});

test("skipping twice wraps debuggablePromise once", () => {
  const wrapped = debuggable.debuggablePromise;
  skipPromiseStackTraces();
  assert.equal(debuggable.debuggablePromise, wrapped);
});
