// The Pulumi SDK records a stack trace on every promise it tracks (@pulumi/pulumi 3.270
// runtime/debuggable.js debuggablePromise: `new Error().stack`), and it tracks four for every
// property of every resource (runtime/rpc.js transferProperties: value, known, secret,
// dependencies). The trace is read in one place only: the leak report printed at exit when
// PULUMI_DEBUG_PROMISE_LEAKS is set (debuggable.js leakedPromises -> promiseDebugString).
// Capturing and formatting those traces was a third of `mailstack plan`'s CPU time at 100 domains
// (about 180,000 traces) and most of its memory growth.
//
// The offline runs therefore let debuggablePromise capture no frames, unless leaks are being
// debugged (the SDK's own flag, debuggable.js debugPromiseLeaks, read from that variable). Everything else it does is kept: the promise is still a leak candidate, still removed
// when it settles, and the exit check still reports leaks (with an empty trace). Errors the program
// throws and the SDK's own source positions (resource.js Resource.callsites) keep their frames.
// The SDK calls debuggablePromise through the module's exports object everywhere
// (`debuggable_1.debuggablePromise(...)` in rpc.js, resource.js, invoke.js, settings.js,
// callbacks.js), so replacing the export reaches every caller.

interface DebuggableModule {
  debuggablePromise: <T>(promise: Promise<T>, ctx: unknown) => Promise<T>;
  debugPromiseLeaks: boolean;
}

let skipping = false;

export function skipPromiseStackTraces(): void {
  if (skipping) return;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const debuggable = require("@pulumi/pulumi/runtime/debuggable") as Partial<DebuggableModule>;
  const tracked = debuggable.debuggablePromise;
  if (typeof tracked !== "function") {
    throw new Error("this @pulumi/pulumi has no runtime.debuggable.debuggablePromise; the offline engine needs it");
  }
  debuggable.debuggablePromise = <T>(promise: Promise<T>, ctx: unknown): Promise<T> => {
    if (debuggable.debugPromiseLeaks) return tracked(promise, ctx);
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      return tracked(promise, ctx);
    } finally {
      Error.stackTraceLimit = limit;
    }
  };
  skipping = true;
}
