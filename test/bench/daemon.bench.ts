/**
 * Daemon benchmark: messages per second accepted and stored durably, and idle and peak memory,
 * for maild beside Haraka (npm) and Postfix (Debian), under the same `smtp-source` load.
 *
 *   npm run bench:daemon            (root; Debian packages from infra/local-internet/install-packages.sh)
 *   BENCH_MESSAGES=20000 BENCH_SESSIONS=50 BENCH_SIZE=4096 npm run bench:daemon
 *
 * Each server runs alone in its own namespace host of a local internet, one after the other; the
 * load comes from another host: `smtp-source -d -s SESSIONS -m MESSAGES -l SIZE` (no TLS; `-d`
 * reuses each connection for the next message, see REUSE below for why). Durability is the same
 * for all three: the 250 reply to DATA is sent only after the message is fsynced together with
 * its directory entry.
 *   - maild: its own Maildir delivery (file fsynced in tmp/, renamed into new/, new/ fsynced before
 *     250), with SPF, DKIM, DMARC and ARC verified for every message (which the others do not do).
 *   - Haraka: a queue plugin (daemon-haraka-queue.js) writes tmp/, fsyncs, renames into new/,
 *     fsyncs new/, then answers 250. Haraka is installed into test/bench/haraka/ by this command.
 *   - Postfix: its queue file is fsynced by cleanup before smtpd answers 250 (Postfix default);
 *     delivery is to the `discard` transport, so what is measured is durable queue acceptance,
 *     the same point at which maild and Haraka answer.
 * Memory: sum of PSS (proportional set size) over every process of the server (Postfix runs
 * many processes; PSS counts their shared pages once). Idle = 2 s after start, before load;
 * peak = highest sample (every 100 ms) during the load.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { LocalInternet, runCommand, type NetHost } from "../../infra/local-internet/netns";
import { startKnot, type KnotServer } from "../../infra/local-internet/knot";
import { makeTestTls } from "../../infra/local-internet/test-tls";
import { waitForPort } from "../../infra/local-internet/wait-for-port";
import { startPostfix } from "../../infra/local-internet/postfix";
import { argon2idHash } from "../../components/shared/argon2id";
import { bundleMaild } from "../harness/maild";

const ROOT = path.resolve(__dirname, "../..");
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 5000);
const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 20);
const SIZE = Number(process.env.BENCH_SIZE ?? 4096);
/**
 * Connection reuse (`smtp-source -d`): each session sends its messages one after another over one
 * connection, as an MTA with a connection cache does towards a busy destination. Without it, the
 * 100 ms early-talker pause smtp-server (maild's SMTP library) keeps before each greeting, not the
 * server's work, sets maild's rate. BENCH_REUSE=0 opens one connection per message instead.
 */
const REUSE = process.env.BENCH_REUSE !== "0";
/** which servers to run, comma-separated (default all three; for working on one of them) */
const SERVERS = (process.env.BENCH_SERVERS ?? "Postfix,maild,Haraka").split(",").map((s) => s.trim().toLowerCase());
/** extra node flags for maild, e.g. --cpu-prof --cpu-prof-dir=/tmp/prof (profiling) */
const MAILD_NODE_FLAGS = (process.env.BENCH_MAILD_NODE_FLAGS ?? "").split(" ").filter(Boolean);
/** copy each server's log here before the work directory is removed */
const KEEP_LOGS = process.env.BENCH_KEEP_LOGS;
const DOMAIN = "example.test";
const RECIPIENT = `bench@${DOMAIN}`;
const SENDER = "load@example.net";

interface Result {
  name: string;
  seconds: number;
  stored: number;
  idleMb: number;
  peakMb: number;
  /** CPU seconds the server's processes used during the load */
  cpuSeconds: number;
  note?: string;
}

export function progress(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

/**
 * Sum over every process in a namespace, in MiB, of PSS (smaps_rollup; shared pages split between
 * their users) or of RSS (status; shared pages counted once per process).
 */
export function namespaceMemoryMb(ns: string, kind: "pss" | "rss"): number {
  let pids: string[] = [];
  try {
    pids = execFileSync("ip", ["netns", "pids", ns], { encoding: "utf8" }).split("\n").filter(Boolean);
  } catch {
    return 0;
  }
  let kb = 0;
  for (const pid of pids) {
    try {
      const m =
        kind === "pss"
          ? /^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))
          : /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
      if (m) kb += Number(m[1]);
    } catch {
      /* exited between listing and reading */
    }
  }
  return kb / 1024;
}

export function namespacePssMb(ns: string): number {
  return namespaceMemoryMb(ns, "pss");
}

/** utime + stime in seconds summed over every process in a namespace (proc(5) stat fields 14, 15). */
export function namespaceCpuSeconds(ns: string): number {
  let pids: string[] = [];
  try {
    pids = execFileSync("ip", ["netns", "pids", ns], { encoding: "utf8" }).split("\n").filter(Boolean);
  } catch {
    return 0;
  }
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      /* exited */
    }
  }
  return ticks / 100;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Run smtp-source from `load` against host:25, sampling the server's memory; returns seconds and peak MiB. */
async function drive(load: NetHost, server: NetHost): Promise<{ seconds: number; peakMb: number; cpuSeconds: number }> {
  const cpuBefore = namespaceCpuSeconds(server.ns);
  let peakMb = namespacePssMb(server.ns);
  const sampler = setInterval(() => {
    peakMb = Math.max(peakMb, namespacePssMb(server.ns));
  }, 100);
  const started = process.hrtime.bigint();
  const r = await load.run(
    smtpSource({
      reuse: REUSE,
      sessions: SESSIONS,
      messages: MESSAGES,
      size: SIZE,
      sender: SENDER,
      recipient: RECIPIENT,
      target: server.ipv4,
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  clearInterval(sampler);
  peakMb = Math.max(peakMb, namespacePssMb(server.ns));
  const cpuSeconds = namespaceCpuSeconds(server.ns) - cpuBefore;
  if (r.code !== 0) throw new Error(`smtp-source against ${server.name}: exit ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 2000)}`);
  return { seconds, peakMb, cpuSeconds };
}

function countFiles(dir: string): number {
  return fs.existsSync(dir) ? fs.readdirSync(dir).length : 0;
}

/** Spawn a server with stdout/stderr going straight to a file (not through this process). */
export function spawnLogged(host: NetHost, argv: string[], logFile: string, env?: NodeJS.ProcessEnv) {
  const quoted = argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(" ");
  return host.spawn(["bash", "-c", `exec ${quoted} >>'${logFile}' 2>&1`], { env: env ?? process.env });
}

export function keepLog(file: string): void {
  if (KEEP_LOGS) {
    fs.mkdirSync(KEEP_LOGS, { recursive: true });
    fs.copyFileSync(file, path.join(KEEP_LOGS, path.basename(file)));
  }
}

export async function idleMb(host: NetHost): Promise<number> {
  await sleep(2000);
  return namespacePssMb(host.ns);
}

async function benchMaild(net: LocalInternet, host: NetHost, load: NetHost, knot: KnotServer): Promise<Result> {
  const main = path.join(ROOT, "server-bootstrap/maild/main.ts");
  if (!fs.existsSync(main))
    return { name: "maild", seconds: NaN, stored: 0, idleMb: NaN, peakMb: NaN, cpuSeconds: NaN, note: `${main} does not exist yet` };
  const dir = path.join(net.workDir, "maild");
  fs.mkdirSync(dir, { recursive: true });
  // The box runs a bundle (one JS file) on plain node; so does the benchmark.
  const bundle = await bundleMaild();
  const tls = await makeTestTls(path.join(dir, "tls"), [`mail.${DOMAIN}`], "maild");
  const dataDir = path.join(dir, "data");
  const config = {
    hostname: `mail.${DOMAIN}`,
    domains: [{ name: DOMAIN, dkim: [] }],
    users: [{ address: RECIPIENT, passwordHash: argon2idHash("bench") }],
    aliases: [],
    tls: { certPath: tls.certPath, keyPath: tls.keyPath },
    dataDir,
    listen: { smtp: [{ host: host.ipv4, port: 25 }], http: [{ host: host.ipv4, port: 80 }], https: [{ host: host.ipv4, port: 443 }] },
    dnsServers: [knot.host.ipv4],
    limits: { maxConnectionsPerIp: 100000, maxConnections: 100000, maxMessagesPerIpPerMinute: 10000000 },
  };
  const configPath = path.join(dir, "maild.json");
  fs.writeFileSync(configPath, JSON.stringify(config, null, 2));
  const logFile = path.join(dir, "maild.log");
  const child = await startListening(host, "maild", [process.execPath, ...MAILD_NODE_FLAGS, bundle, "--config", configPath], logFile);
  const idle = await idleMb(host);
  const { seconds, peakMb, cpuSeconds } = await drive(load, host);
  const maildir = path.join(dataDir, "mail", DOMAIN, "bench", "Maildir");
  const stored = countFiles(path.join(maildir, "new")) + countFiles(path.join(maildir, "cur"));
  await LocalInternet.stopProcess(child, 10_000);
  keepLog(logFile);
  return { name: "maild", seconds, stored, idleMb: idle, peakMb, cpuSeconds };
}

/** The zones every benchmark serves: the load generator's domain (SPF passes, DMARC p=none) and ours. */
export function benchZones(load: NetHost, domain: string): { origin: string; lines: string[] }[] {
  return [
    {
      origin: "example.net.",
      lines: [`example.net. 300 IN TXT "v=spf1 ip4:${load.ipv4} -all"`, `_dmarc.example.net. 300 IN TXT "v=DMARC1; p=none"`],
    },
    { origin: `${domain}.`, lines: [] },
  ];
}

/** smtp-source(1) arguments: `messages` of `size` bytes over `sessions`, from `sender` to `recipient` at `target`. */
export function smtpSource(o: {
  reuse: boolean;
  sessions: number;
  messages: number;
  size: number;
  sender: string;
  recipient: string;
  target: string;
}): string[] {
  const args = ["-s", String(o.sessions), "-m", String(o.messages), "-l", String(o.size), "-M", "load.example.net"];
  return ["/usr/sbin/smtp-source", ...(o.reuse ? ["-d"] : []), ...args, "-f", o.sender, "-t", o.recipient, `${o.target}:25`];
}

/** Throws, naming the install script, when one of the Debian programs a benchmark drives is missing. */
export function requirePrograms(programs: string[]): void {
  for (const bin of programs) {
    if (!fs.existsSync(bin)) throw new Error(`${bin} not found: run infra/local-internet/install-packages.sh as root first`);
  }
}

/** Starts a server in `host` with its output in `logFile`; resolves once it listens on port 25. */
export async function startListening(host: NetHost, what: string, argv: string[], logFile: string, env?: NodeJS.ProcessEnv) {
  const child = spawnLogged(host, argv, logFile, env);
  await waitForPort(host.ipv4, 25, what, 20_000, () => child.exitCode === null).catch((e: Error) => {
    throw new Error(`${e.message}\n${fs.readFileSync(logFile, "utf8").slice(-3000)}`);
  });
  return child;
}

/**
 * A Haraka configuration directory (`haraka -i`, then ours on top): listening on `host`:25 as
 * haraka.<domain>, with `plugins` and the benchmark's own plugin file copied in as `pluginName`.
 */
export function initHaraka(
  bin: string,
  dir: string,
  host: NetHost,
  domain: string,
  plugins: string,
  pluginFile: string,
  pluginName: string,
) {
  execFileSync(process.execPath, [bin, "-i", dir], { stdio: "ignore" });
  const cfg = (file: string, text: string) => fs.writeFileSync(path.join(dir, "config", file), text);
  cfg("smtp.ini", `listen=${host.ipv4}:25\n`);
  cfg("me", `haraka.${domain}\n`);
  cfg("plugins", plugins);
  cfg("log.ini", "[main]\nlevel=notice\n");
  fs.copyFileSync(path.join(__dirname, pluginFile), path.join(dir, "plugins", `${pluginName}.js`));
  return cfg;
}

export function ensureHaraka(): string {
  const dir = path.join(ROOT, "test/bench/haraka");
  const bin = path.join(dir, "node_modules/Haraka/bin/haraka");
  if (!fs.existsSync(bin)) {
    progress("installing Haraka into test/bench/haraka (npm install) ...");
    execFileSync("npm", ["install", "--no-audit", "--no-fund", "--omit=dev"], { cwd: dir, stdio: ["ignore", "ignore", "inherit"] });
  }
  if (!fs.existsSync(bin)) throw new Error(`Haraka not found at ${bin} after npm install in ${dir}`);
  return bin;
}

async function benchHaraka(net: LocalInternet, host: NetHost, load: NetHost): Promise<Result> {
  const bin = ensureHaraka();
  const dir = path.join(net.workDir, "haraka");
  // Haraka's own outbound queue lives in <dir>/queue; ours is beside it.
  const queueDir = path.join(dir, "bench-queue");
  const cfg = initHaraka(bin, dir, host, DOMAIN, "rcpt_to.in_host_list\nbench_fsync\n", "daemon-haraka-queue.js", "bench_fsync");
  cfg("host_list", `${DOMAIN}\n`);
  const logFile = path.join(dir, "haraka.log");
  const child = await startListening(host, "haraka", [process.execPath, bin, "-c", dir], logFile, {
    ...process.env,
    HARAKA_BENCH_QUEUE: queueDir,
  });
  const idle = await idleMb(host);
  const { seconds, peakMb, cpuSeconds } = await drive(load, host);
  const stored = countFiles(path.join(queueDir, "new"));
  await LocalInternet.stopProcess(child, 10_000);
  keepLog(logFile);
  return { name: "Haraka", seconds, stored, idleMb: idle, peakMb, cpuSeconds };
}

async function benchPostfix(net: LocalInternet, host: NetHost, load: NetHost): Promise<Result> {
  const peer = await startPostfix(net, host, {
    myhostname: `postfix.${DOMAIN}`,
    mydomain: DOMAIN,
    extraMain: {
      relay_domains: DOMAIN,
      relay_transport: "discard:",
      default_transport: "discard:",
      // smtp-source opens a connection per message: do not let anvil's defaults throttle it.
      smtpd_client_connection_rate_limit: "0",
      smtpd_client_message_rate_limit: "0",
    },
  });
  const idle = await idleMb(host);
  const { seconds, peakMb, cpuSeconds } = await drive(load, host);
  await peer.waitForEmptyQueue(120_000);
  const stored = (peer.log().match(/ status=sent \(/g) ?? []).length;
  await peer.stop();
  return { name: "Postfix", seconds, stored, idleMb: idle, peakMb, cpuSeconds };
}

function table(results: Result[]): string {
  const postfix = results.find((r) => r.name === "Postfix");
  const rate = (r: Result) => r.stored / r.seconds;
  const ratio = (v: number, base: number | undefined) => (base && Number.isFinite(v) ? `${(v / base).toFixed(2)}x` : "n/a");
  const f = (v: number, digits = 0) => (Number.isFinite(v) ? v.toFixed(digits) : "n/a");
  const lines = [
    `| server | msgs/s (stored durably) | vs Postfix | idle MiB | vs Postfix | peak MiB | vs Postfix | CPU ms/msg |`,
    `|---|---:|---:|---:|---:|---:|---:|---:|`,
  ];
  for (const r of results) {
    lines.push(
      `| ${r.name} | ${f(rate(r))} | ${ratio(rate(r), postfix && rate(postfix))} | ${f(r.idleMb, 1)} | ${ratio(r.idleMb, postfix?.idleMb)} | ${f(r.peakMb, 1)} | ${ratio(r.peakMb, postfix?.peakMb)} | ${f((r.cpuSeconds * 1000) / r.stored, 2)} |`,
    );
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  requirePrograms(["/usr/sbin/smtp-source", "/usr/sbin/postfix", "/usr/sbin/knotd"]);
  const net = await LocalInternet.create();
  const results: Result[] = [];
  try {
    const dns = await net.addHost("dns");
    const load = await net.addHost("load");
    const hosts = { maild: await net.addHost("maild"), haraka: await net.addHost("haraka"), postfix: await net.addHost("postfix") };
    const knot = await startKnot(net, dns, benchZones(load, DOMAIN));
    await net.setResolver(dns.ipv4);
    const runs: [string, () => Promise<Result>][] = [
      ["Postfix", () => benchPostfix(net, hosts.postfix, load)],
      ["maild", () => benchMaild(net, hosts.maild, load, knot)],
      ["Haraka", () => benchHaraka(net, hosts.haraka, load)],
    ];
    for (const [name, run] of runs) {
      if (!SERVERS.includes(name.toLowerCase())) continue;
      progress(`${name}: ${MESSAGES} messages of ${SIZE} bytes over ${SESSIONS} sessions ...`);
      const r = await run();
      if (r.note === undefined && r.stored !== MESSAGES) {
        r.note = `stored ${r.stored} of ${MESSAGES} messages`;
      }
      progress(
        `${name}: ${Number.isFinite(r.seconds) ? `${r.seconds.toFixed(2)} s, ${(r.stored / r.seconds).toFixed(0)} msgs/s` : r.note}`,
      );
      results.push(r);
    }
    await knot.stop();
  } finally {
    await net.destroy();
  }
  await report(
    `smtp-source ${REUSE ? "-d " : ""}-s ${SESSIONS} -m ${MESSAGES} -l ${SIZE}; $CPUS CPUs; Node ${process.version}; memory = PSS summed over the server's processes`,
    table(results),
    results,
  );
}

/** Prints a benchmark's result table under `heading` ($CPUS: the machine's CPU count) and any notes; a note fails the run. */
export async function report(heading: string, table: string, results: { name: string; note?: string }[]): Promise<void> {
  const cpu = (await runCommand(["nproc"])).stdout.trim();
  const notes = results
    .filter((r) => r.note)
    .map((r) => `\n${r.name}: ${r.note}`)
    .join("");
  process.stdout.write(`\n${heading.replace("$CPUS", cpu)}\n\n${table}\n${notes}\n`);
  if (results.some((r) => r.note)) process.exitCode = 1;
}

// Run only as the entry point: outbound.bench.ts imports the helpers above.
if (require.main === module) {
  main().catch((e: Error) => {
    process.stderr.write(`bench:daemon: ${e.stack ?? e.message}\n`);
    process.exit(1);
  });
}
