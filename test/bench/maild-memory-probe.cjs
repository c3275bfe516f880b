// Preloaded into maild by maild-memory.bench.ts (`node --require`), so that maild itself stays as
// it is: every 100 ms it appends one JSON line to $MAILD_MEMORY_PROBE with Node's and V8's own
// account of the process's memory (process.memoryUsage, v8.getHeapStatistics and
// v8.getHeapSpaceStatistics: per space, what is reserved, committed and used).
"use strict";
const fs = require("node:fs");
const v8 = require("node:v8");
const { constants } = require("node:perf_hooks");

// Time the main thread spent in garbage collection pauses so far, ms, by kind (what V8 flags for
// the heap's sizes trade memory against); concurrent marking on helper threads is not in it.
const gcPauseMs = { minor: 0, major: 0, other: 0 };
const gcCount = { minor: 0, major: 0, other: 0 };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = e.detail?.kind;
    const key = kind === constants.NODE_PERFORMANCE_GC_MINOR ? "minor" : kind === constants.NODE_PERFORMANCE_GC_MAJOR ? "major" : "other";
    gcPauseMs[key] += e.duration;
    gcCount[key] += 1;
  }
}).observe({ entryTypes: ["gc"] });

const out = process.env.MAILD_MEMORY_PROBE;
if (!out) throw new Error("maild-memory-probe: MAILD_MEMORY_PROBE (the file to append to) is not set");

function sample() {
  const spaces = {};
  for (const s of v8.getHeapSpaceStatistics()) {
    spaces[s.space_name] = { size: s.space_size, used: s.space_used_size, physical: s.physical_space_size };
  }
  const line = {
    t: Date.now(),
    mem: process.memoryUsage(),
    heap: v8.getHeapStatistics(),
    spaces,
    // internal modules and bindings Node has loaded so far (its own; the bundle is one file)
    builtins: process.moduleLoadList.length,
    handles: process.getActiveResourcesInfo().length,
    gcPauseMs: { ...gcPauseMs },
    gcCount: { ...gcCount },
  };
  fs.appendFileSync(out, JSON.stringify(line) + "\n");
}

setInterval(sample, 100).unref();
