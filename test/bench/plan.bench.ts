// Benchmark: wall time and peak memory of `mailstack plan` for 1, 10 and 100 domains on one
// server. Runs the built CLI (dist/) as a user would, in a fresh process per run, and reports
// the median of RUNS runs, the cost of each extra domain between sizes and whether that cost stays
// the same (linear). `npm run bench:plan`.
//
// CPU time is the process's, all threads (the bundle and the DKIM keys are made on worker threads);
// esbuild's own process is not in it. The CLI keeps Node's compile cache between runs (main.ts): the
// first run after a build or an install compiles every module, so one run of the smallest size is
// also timed without the cache.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { stringify } from "yaml";

const root = path.resolve(__dirname, "..", "..");
const cli = path.join(root, "dist", "infra", "cli", "main.js");
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SIZES = (process.env.BENCH_DOMAINS ?? "1,10,100").split(",").map(Number);

function stackFor(domains: number): string {
  const names = Array.from({ length: domains }, (_, i) => `bench${i}.example`);
  return stringify({
    config: {
      "mailstack:hostname": `mail.${names[0]}`,
      "mailstack:domains": names.map((name) => ({ name })),
      "mailstack:users": [{ address: `alice@${names[0]}`, passwordHash: { secure: "v1:bench" } }],
      "mailstack:acme": { email: `hostmaster@${names[0]}`, directory: "letsencrypt" },
    },
  });
}

interface Run {
  seconds: number;
  cpuSeconds: number;
  rssMb: number;
  records: number;
}

function runOnce(projectDir: string, env: NodeJS.ProcessEnv = process.env): Run {
  const started = process.hrtime.bigint();
  const result = spawnSync(
    process.execPath,
    [
      "--require",
      path.join(__dirname, "rss-on-exit.cjs"),
      cli,
      "plan",
      "--stack",
      "bench",
      "--format",
      "json",
      "--project",
      projectDir,
      "--ipv4",
      "198.51.100.25",
      "--ipv6",
      "2001:db8:1::",
    ],
    { encoding: "utf8", maxBuffer: 512 * 1024 * 1024, env },
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (result.status !== 0) throw new Error(`mailstack plan failed: ${result.stderr}`);
  const rss = /BENCH_MAX_RSS_KB=(\d+)/.exec(result.stderr);
  const cpu = /BENCH_CPU_US=(\d+)/.exec(result.stderr);
  if (!rss || !cpu) throw new Error("no RSS or CPU report from the benchmarked process");
  const plan = JSON.parse(result.stdout) as { zones: Record<string, unknown[]> };
  const records = Object.values(plan.zones).reduce((n, rs) => n + rs.length, 0);
  return { seconds, cpuSeconds: Number(cpu[1]) / 1e6, rssMb: Number(rss[1]) / 1024, records };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface Row {
  domains: number;
  records: number;
  seconds: number;
  cpuSeconds: number;
  rssMb: number;
}

function withStack<T>(domains: number, use: (projectDir: string) => T): T {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstack-bench-"));
  try {
    fs.mkdirSync(path.join(dir, "stacks"));
    fs.copyFileSync(path.join(root, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
    fs.writeFileSync(path.join(dir, "stacks", "Pulumi.bench.yaml"), stackFor(domains));
    return use(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Cost of each domain added between two rows: wall time and CPU time (ms), memory (MiB). */
function perExtraDomain(from: Row, to: Row): { ms: number; cpuMs: number; mib: number } {
  const extra = to.domains - from.domains;
  return {
    ms: ((to.seconds - from.seconds) * 1000) / extra,
    cpuMs: ((to.cpuSeconds - from.cpuSeconds) * 1000) / extra,
    mib: (to.rssMb - from.rssMb) / extra,
  };
}

function main(): void {
  if (!fs.existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
  const rows: Row[] = [];
  let uncached: Run | undefined;
  for (const domains of SIZES) {
    withStack(domains, (dir) => {
      if (domains === SIZES[0]) uncached = runOnce(dir, { ...process.env, NODE_DISABLE_COMPILE_CACHE: "1" });
      const runs = Array.from({ length: RUNS }, () => runOnce(dir));
      rows.push({
        domains,
        records: runs[0].records,
        seconds: median(runs.map((r) => r.seconds)),
        cpuSeconds: median(runs.map((r) => r.cpuSeconds)),
        rssMb: median(runs.map((r) => r.rssMb)),
      });
    });
    process.stderr.write(`  ${domains} domain(s): done\n`);
  }
  console.log(`mailstack plan, median of ${RUNS} runs, node ${process.version}, ${os.cpus().length} CPUs`);
  console.log(
    "| domains | DNS records | wall time (s) | CPU time (s) | peak RSS (MiB) | time per domain added (ms) | RSS per domain added (MiB) |",
  );
  console.log("|---:|---:|---:|---:|---:|---:|---:|");
  rows.forEach((r, i) => {
    const step = i > 0 ? perExtraDomain(rows[i - 1], r) : undefined;
    const perTime = step ? step.ms.toFixed(1) : "-";
    const perRss = step ? step.mib.toFixed(2) : "-";
    console.log(
      `| ${r.domains} | ${r.records} | ${r.seconds.toFixed(2)} | ${r.cpuSeconds.toFixed(2)} | ${r.rssMb.toFixed(0)} | ${perTime} | ${perRss} |`,
    );
  });
  if (uncached) {
    console.log(
      `\nWithout Node's compile cache (the first run after a build or install), ${rows[0].domains} domain(s): ${uncached.seconds.toFixed(2)} s wall, ${uncached.cpuSeconds.toFixed(2)} s CPU.`,
    );
  }
  if (rows.length >= 3) {
    // Linear: each domain costs the same whether it is the 2nd or the 100th.
    const first = perExtraDomain(rows[0], rows[1]);
    const last = perExtraDomain(rows[rows.length - 2], rows[rows.length - 1]);
    const range = (a: Row, b: Row) => `${a.domains} -> ${b.domains}`;
    const ratio = (a: number, b: number) => `x${(b / a).toFixed(2)}`;
    console.log(
      `Linearity (1.00 is linear; above, a domain costs more the more there are): a domain added costs ` +
        `${first.ms.toFixed(1)} ms wall, ${first.cpuMs.toFixed(1)} ms CPU and ${first.mib.toFixed(2)} MiB over ${range(rows[0], rows[1])}, ` +
        `${last.ms.toFixed(1)} ms wall, ${last.cpuMs.toFixed(1)} ms CPU and ${last.mib.toFixed(2)} MiB over ${range(rows[rows.length - 2], rows[rows.length - 1])}: ` +
        `wall ${ratio(first.ms, last.ms)}, CPU ${ratio(first.cpuMs, last.cpuMs)}, memory ${ratio(first.mib, last.mib)}.`,
    );
  }
}

main();
