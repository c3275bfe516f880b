// What the offline runs leave out of the Pulumi SDK's bookkeeping (infra/offline/sdk-diagnostics.ts):
// the per-promise debug data and the resources' source positions. What debuggablePromise is for
// stays: leak candidates, `err.promise`, the exit check, and the same settling order.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { MIRRORED_DEBUGGABLE_PROMISE_SHA256, skipSdkDiagnostics } from "../../infra/offline/sdk-diagnostics";

interface TrackedPromise {
  _debugStackTrace?: string;
}
type Track = <T>(p: Promise<T>, ctx: unknown) => Promise<T>;
/* eslint-disable @typescript-eslint/no-require-imports */
const debuggable = require("@pulumi/pulumi/runtime/debuggable") as { debuggablePromise: Track; debugPromiseLeaks: boolean };
const state = require("@pulumi/pulumi/runtime/state") as { getStore(): { leakCandidates: Set<Promise<unknown>> } };
const { Resource } = require("@pulumi/pulumi/resource") as { Resource: { stackTrace(skip: number): unknown[] } };
/* eslint-enable @typescript-eslint/no-require-imports */

const FRAME = /\n\s+at /;
const sdkDebuggablePromise = debuggable.debuggablePromise;
const exitListenersBefore = process.listenerCount("exit");
skipSdkDiagnostics();

test("the lean debuggablePromise mirrors this @pulumi/pulumi's (another SDK version fails here: compare the copy, then update the hash)", () => {
  assert.equal(createHash("sha256").update(sdkDebuggablePromise.toString()).digest("hex"), MIRRORED_DEBUGGABLE_PROMISE_SHA256);
  assert.notEqual(debuggable.debuggablePromise, sdkDebuggablePromise);
});

test("the first tracked promise goes through the SDK, which schedules its exit check for leaks once", async () => {
  await debuggable.debuggablePromise(Promise.resolve(1), "first");
  await debuggable.debuggablePromise(Promise.resolve(2), "second");
  assert.equal(process.listenerCount("exit"), exitListenersBefore + 1);
});

test("a tracked promise is a leak candidate until it resolves, with no debug data on it", async () => {
  let resolve!: (value: string) => void;
  const promise = new Promise<string>((r) => (resolve = r));
  const tracked = debuggable.debuggablePromise(promise, "resolves");
  assert.equal(state.getStore().leakCandidates.has(promise), true);
  assert.equal((promise as TrackedPromise)._debugStackTrace, undefined);
  resolve("value");
  assert.equal(await tracked, "value");
  assert.equal(state.getStore().leakCandidates.has(promise), false);
});

test("a tracked promise that rejects leaves the leak candidates and its error carries the promise", async () => {
  const error = new Error("refused");
  const promise = Promise.reject(error);
  const tracked = debuggable.debuggablePromise(promise, "rejects");
  assert.equal(state.getStore().leakCandidates.has(promise), true);
  await assert.rejects(tracked, error);
  assert.equal((error as Error & { promise?: unknown }).promise, promise);
  assert.equal(state.getStore().leakCandidates.has(promise), false);
});

/** The microtask steps until the promise `track` returns settles. */
async function stepsToSettle(track: Track, outcome: "resolve" | "reject"): Promise<number> {
  let steps = 0;
  let settled = false;
  const tracked = track(outcome === "resolve" ? Promise.resolve(1) : Promise.reject(new Error("no")), "steps");
  tracked.then(
    () => (settled = true),
    () => (settled = true),
  );
  while (!settled) {
    await Promise.resolve();
    steps++;
  }
  return steps;
}

test("a tracked promise settles after as many steps as the SDK's (the program's registrations keep their order)", async () => {
  for (const outcome of ["resolve", "reject"] as const) {
    assert.equal(await stepsToSettle(debuggable.debuggablePromise, outcome), await stepsToSettle(sdkDebuggablePromise, outcome), outcome);
  }
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

test("resources are registered without source positions, and errors keep their stack frames", () => {
  assert.deepEqual(Resource.stackTrace(0), []);
  assert.match(new Error("later").stack ?? "", FRAME);
});

test("skipping twice changes nothing more", () => {
  const lean = debuggable.debuggablePromise;
  skipSdkDiagnostics();
  assert.equal(debuggable.debuggablePromise, lean);
});
