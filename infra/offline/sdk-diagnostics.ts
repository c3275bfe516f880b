// What the Pulumi SDK records for diagnostics that no offline run reads, left out of offline runs.
// Together they were about half of `mailstack plan`'s CPU time and most of its memory at 100
// domains (2,500 resources).
//
// 1. Promise stack traces. The SDK tracks four promises for every property of every resource
//    (@pulumi/pulumi 3.270 runtime/rpc.js transferProperties: value, known, secret, dependencies)
//    through runtime/debuggable.js debuggablePromise, which stores on each an id, a label and
//    `new Error().stack` as non-enumerable properties. They are read in one place only: the leak
//    report printed at exit when PULUMI_DEBUG_PROMISE_LEAKS is set (debuggable.js leakedPromises ->
//    promiseDebugString). What the tracking is for stays: the promise is a leak candidate until it
//    settles, a rejection carries the promise (`err.promise`), and the exit check reports leaks.
//    With the variable set (the SDK's own flag, debuggable.js debugPromiseLeaks) the SDK's function
//    runs as it is. The SDK calls debuggablePromise through the module's exports object everywhere
//    (`debuggable_1.debuggablePromise(...)` in rpc.js, resource.js, invoke.js, settings.js,
//    callbacks.js), so replacing the export reaches every caller.
//
// 2. Source positions. Every resource's constructor captures the whole call stack with
//    Error.stackTraceLimit raised to Infinity, parses each frame and makes it a file URL
//    (resource.js Resource.stackTrace <- Resource.callsites) for the register request's
//    sourcePosition and stackTrace, which the engine shows beside a resource. Neither the mock monitor
//    (runtime/mocks.js MockMonitor.registerResource) nor this engine (registration.ts goalFromRequest)
//    reads them.
//
// Errors the program throws keep their stack traces.

import { createHash } from "node:crypto";

/**
 * SHA-256 of debuggablePromise's source in @pulumi/pulumi 3.270 (runtime/debuggable.js), the
 * function the lean copy below mirrors. Another SDK's function is only kept from capturing frames
 * (Error.stackTraceLimit 0 around it), whatever else it has come to do.
 */
export const MIRRORED_DEBUGGABLE_PROMISE_SHA256 = "19d27a81e9df719cc4d1ba7ac2958e165c4953ea6f62143e46f634c8446e72c6";

interface DebuggableModule {
  debuggablePromise: <T>(promise: Promise<T>, ctx: unknown) => Promise<T>;
  debugPromiseLeaks: boolean;
}

interface StateModule {
  getStore(): { leakCandidates: Set<Promise<unknown>> };
}

interface ResourceModule {
  Resource: { stackTrace(skip: number): unknown[] };
}

let skipping = false;

export function skipSdkDiagnostics(): void {
  if (skipping) return;
  /* eslint-disable @typescript-eslint/no-require-imports */
  const debuggable = require("@pulumi/pulumi/runtime/debuggable") as Partial<DebuggableModule>;
  const state = require("@pulumi/pulumi/runtime/state") as StateModule;
  const { Resource } = require("@pulumi/pulumi/resource") as ResourceModule;
  /* eslint-enable @typescript-eslint/no-require-imports */
  const sdkDebuggablePromise = debuggable.debuggablePromise;
  if (typeof sdkDebuggablePromise !== "function" || typeof Resource?.stackTrace !== "function") {
    throw new Error(
      "this @pulumi/pulumi has no runtime.debuggable.debuggablePromise or Resource.stackTrace; the offline engine needs them",
    );
  }

  Resource.stackTrace = () => [];
  skipping = true;

  if (createHash("sha256").update(sdkDebuggablePromise.toString()).digest("hex") !== MIRRORED_DEBUGGABLE_PROMISE_SHA256) {
    debuggable.debuggablePromise = <T>(promise: Promise<T>, ctx: unknown): Promise<T> => {
      if (debuggable.debugPromiseLeaks) return sdkDebuggablePromise(promise, ctx);
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = 0;
      try {
        return sdkDebuggablePromise(promise, ctx);
      } finally {
        Error.stackTraceLimit = limit;
      }
    };
    return;
  }
  // The SDK schedules its exit check for leaks on its first tracked promise: that one goes through it.
  let exitCheckScheduled = false;
  debuggable.debuggablePromise = <T>(promise: Promise<T>, ctx: unknown): Promise<T> => {
    if (debuggable.debugPromiseLeaks || !exitCheckScheduled) {
      exitCheckScheduled = true;
      return sdkDebuggablePromise(promise, ctx);
    }
    const { leakCandidates } = state.getStore();
    leakCandidates.add(promise);
    // then + catch as in the SDK: a tracked promise settles after the same number of steps.
    return promise
      .then((value) => {
        leakCandidates.delete(promise);
        return value;
      })
      .catch((err: unknown) => {
        leakCandidates.delete(promise);
        (err as { promise?: unknown }).promise = promise;
        throw err;
      });
  };
}
