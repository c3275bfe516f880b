// Benchmark: wall time and peak memory of `mailstack plan` for 1, 10 and 100 domains on one
// server. Runs the built CLI (dist/) as a user would, in a fresh process per run, and reports
// the median of RUNS runs plus the growth per domain. `npm run bench:plan`.
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

function runOnce(projectDir: string): { seconds: number; rssMb: number; records: number } {
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
    { encoding: "utf8", maxBuffer: 512 * 1024 * 1024 },
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (result.status !== 0) throw new Error(`mailstack plan failed: ${result.stderr}`);
  const rss = /BENCH_MAX_RSS_KB=(\d+)/.exec(result.stderr);
  if (!rss) throw new Error("no RSS report from the benchmarked process");
  const plan = JSON.parse(result.stdout) as { zones: Record<string, unknown[]> };
  const records = Object.values(plan.zones).reduce((n, rs) => n + rs.length, 0);
  return { seconds, rssMb: Number(rss[1]) / 1024, records };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function main(): void {
  if (!fs.existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
  const rows: { domains: number; records: number; seconds: number; rssMb: number }[] = [];
  for (const domains of SIZES) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstack-bench-"));
    try {
      fs.mkdirSync(path.join(dir, "stacks"));
      fs.copyFileSync(path.join(root, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
      fs.writeFileSync(path.join(dir, "stacks", "Pulumi.bench.yaml"), stackFor(domains));
      const runs = Array.from({ length: RUNS }, () => runOnce(dir));
      rows.push({
        domains,
        records: runs[0].records,
        seconds: median(runs.map((r) => r.seconds)),
        rssMb: median(runs.map((r) => r.rssMb)),
      });
      process.stderr.write(`  ${domains} domain(s): done\n`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  const base = rows[0];
  console.log(`mailstack plan, median of ${RUNS} runs, node ${process.version}, ${os.cpus().length} CPUs`);
  console.log("| domains | DNS records | wall time (s) | peak RSS (MiB) | time per extra domain (ms) | RSS per extra domain (MiB) |");
  console.log("|---:|---:|---:|---:|---:|---:|");
  for (const r of rows) {
    const extra = r.domains - base.domains;
    const perTime = extra > 0 ? (((r.seconds - base.seconds) * 1000) / extra).toFixed(1) : "-";
    const perRss = extra > 0 ? ((r.rssMb - base.rssMb) / extra).toFixed(2) : "-";
    console.log(`| ${r.domains} | ${r.records} | ${r.seconds.toFixed(2)} | ${r.rssMb.toFixed(0)} | ${perTime} | ${perRss} |`);
  }
}

main();
