// Preloaded into a benchmarked process: reports its peak resident set size and the CPU time of all
// its threads on exit (stderr). Node preloads this into worker threads too; only the main thread
// reports, once the process is done.
const fs = require("node:fs");
const { isMainThread } = require("node:worker_threads");
if (isMainThread) {
  process.on("exit", () => {
    const usage = process.resourceUsage();
    fs.writeSync(2, `\nBENCH_MAX_RSS_KB=${usage.maxRSS}\nBENCH_CPU_US=${usage.userCPUTime + usage.systemCPUTime}\n`);
  });
}
