/**
 * Daemon benchmark: messages per second accepted and stored durably, CPU per message, and idle and
 * peak memory, for maild beside the stacks a user would otherwise run (Postfix with rspamd as a
 * milter; Postfix with OpenDKIM, OpenDMARC and policyd-spf: daemon-peers.ts), which verify SPF,
 * DKIM and DMARC of every message as maild does, and beside plain Postfix and Haraka (npm), which
 * verify nothing and are there as speed references. All under the same `smtp-source` loads.
 *
 *   npm run bench:daemon            (root; Debian packages from infra/local-internet/install-packages.sh)
 *   BENCH_MESSAGES=20000 BENCH_LOADS=reuse:50 BENCH_SERVERS=maild,postfix-rspamd npm run bench:daemon
 *
 * Each server runs alone in a namespace host of a local internet of its own for each load, started
 * afresh, one after the other; the load comes from another host. Loads (BENCH_LOADS, comma-separated):
 *   - reuse:N  `smtp-source -d -s N -m MESSAGES -F message`: N sessions, each sending its messages
 *     one after another over one connection, as an MTA with a connection cache does towards a busy MX;
 *   - new:N    the same without -d: a new connection for every message, N at a time (a busy MX sees
 *     many senders at once). All connections come from one client address: maild's pregreet test
 *     (greeting-gate.ts) makes the first ones wait limits.greetWaitMs, later ones are greeted at
 *     once, as Postfix's postscreen treats a client in its cache.
 * The message (signed-message.ts) is DKIM-signed by example.net, whose SPF authorizes the load
 * host and whose DMARC policy is p=reject, so every verifier does the full work and every check passes.
 * Durability is the same for all: the 250 reply to DATA is sent only after the message is fsynced
 * together with its directory entry.
 *   - maild: its own Maildir delivery (file fsynced in tmp/, renamed into new/, new/ fsynced before
 *     250), after asking rspamd (spam-filter.ts: rspamd, Redis and unbound in the same host, as on
 *     the box) about the message: rspamd verifies SPF, DKIM, DMARC and ARC.
 *   - Postfix, with or without filters: its queue file is fsynced by cleanup before smtpd answers
 *     250 (Postfix default); delivery is to the `discard` transport, so what is measured is durable
 *     queue acceptance, the same point at which maild and Haraka answer.
 *   - Haraka: a queue plugin (daemon-haraka-queue.js) writes tmp/, fsyncs, renames into new/,
 *     fsyncs new/, then answers 250. Haraka is installed into test/bench/haraka/ by this command.
 * Verified = messages whose SPF, DKIM and DMARC all passed, counted after the load from what the
 * server recorded: the Authentication-Results in maild's Maildir, the results Postfix's header
 * checks logged for the filters' headers (daemon-peers.ts).
 * Memory: sum of PSS (proportional set size) over every process in the server's host (Postfix runs
 * many processes; rspamd, Redis and unbound are counted where they run; PSS counts shared pages
 * once). Idle = 10 s after start, before load; peak = highest sample during the load. CPU: user +
 * system time of the host's processes (and of their children that exited) during the load.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { LocalInternet, runCommand, type NetHost } from "../../infra/local-internet/netns";
import { startKnot, type KnotServer } from "../../infra/local-internet/knot";
import { makeTestTls } from "../../infra/local-internet/test-tls";
import { waitForPort } from "../../infra/local-internet/wait-for-port";
import { startPostfix } from "../../infra/local-internet/postfix";
import { startSpamFilter } from "../../infra/local-internet/spam-filter";
import { argon2idHash } from "../../components/shared/argon2id";
import { bundleMaild } from "../harness/maild";
import { MAILD_NODE_FLAGS as SHIPPED_NODE_FLAGS } from "../../server-bootstrap/maild/node-flags";
import { benchPostfixMain, startPostfixMilters, startPostfixRspamd, stopWithin, type RunningPeer } from "./daemon-peers";
import { makeSignedMessage, type SignedMessage } from "./signed-message";

const ROOT = path.resolve(__dirname, "../..");
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 5000);
/** body size of the benchmark message; the message as sent is about 1 KiB more (headers, signature) */
const SIZE = Number(process.env.BENCH_SIZE ?? 4096);

export interface Load {
  /** one connection per session for all its messages (`smtp-source -d`), or one per message */
  reuse: boolean;
  sessions: number;
}

function parseLoads(text: string): Load[] {
  return text.split(",").map((item) => {
    const m = /^(reuse|new):(\d+)$/.exec(item.trim());
    if (!m || Number(m[2]) < 1)
      throw new Error(`BENCH_LOADS: "${item}" is not reuse:N or new:N (N sessions at once), e.g. reuse:20,new:100`);
    return { reuse: m[1] === "reuse", sessions: Number(m[2]) };
  });
}

/**
 * Idle memory is read this long after the server listens: rspamd's main process loads its maps
 * for several seconds after it answers (its PSS went from about 36 to 63 MiB 5-8 s after start).
 */
const IDLE_AFTER_MS = 10_000;
/** smtp-source is stopped after this long (the slowest server here needs about a minute for 5000 messages) */
const LOAD_TIMEOUT_MS = Number(process.env.BENCH_LOAD_TIMEOUT_S ?? 900) * 1000;
const LOADS = parseLoads(process.env.BENCH_LOADS ?? "reuse:20,new:20,new:100");
/** which servers to run, comma-separated ids (default all); see SERVERS below */
const SERVER_IDS = (process.env.BENCH_SERVERS ?? "postfix,postfix-rspamd,postfix-milters,maild,haraka")
  .split(",")
  .map((s) => s.trim().toLowerCase());
/**
 * maild runs with the Node flags it ships with (server-bootstrap/maild/node-flags.ts), then
 * BENCH_MAILD_NODE_FLAGS, e.g. --cpu-prof --cpu-prof-dir=/tmp/prof (profiling); a V8 flag given
 * again there overrides the shipped one (V8 takes the last).
 */
const MAILD_NODE_FLAGS = [...SHIPPED_NODE_FLAGS, ...(process.env.BENCH_MAILD_NODE_FLAGS ?? "").split(" ").filter(Boolean)];
/** copy each server's log here before the work directory is removed */
const KEEP_LOGS = process.env.BENCH_KEEP_LOGS;
const DOMAIN = "example.test";
const RECIPIENT = `bench@${DOMAIN}`;
const SENDER_DOMAIN = "example.net";
const SENDER = `load@${SENDER_DOMAIN}`;

interface Result {
  name: string;
  load: Load;
  seconds: number;
  stored: number;
  /** messages with SPF, DKIM and DMARC all passed; undefined: the server checks none of them */
  verified?: number;
  idleMb: number;
  peakMb: number;
  /** idle and peak of the filters alone (FILTER_PROGRAMS) and of the MTA alone */
  idleFiltersMb: number;
  peakFiltersMb: number;
  peakMtaMb: number;
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

/**
 * CPU seconds used by every process in a namespace and by its children that have exited and been
 * reaped: utime + stime + cutime + cstime (proc(5) stat fields 14-17). Postfix's master reaps the
 * smtpd, cleanup and policy processes that exit during a load: their time is in its cutime.
 */
export function namespaceCpuSeconds(ns: string): number {
  return namespaceCpuSplit(ns).total;
}

/** CPU seconds of a namespace's processes (with their exited children): all of them, and the filters' (FILTER_PROGRAMS). */
export function namespaceCpuSplit(ns: string): { total: number; filters: number } {
  let pids: string[] = [];
  try {
    pids = execFileSync("ip", ["netns", "pids", ns], { encoding: "utf8" }).split("\n").filter(Boolean);
  } catch {
    return { total: 0, filters: 0 };
  }
  let ticks = 0;
  let filterTicks = 0;
  for (const pid of pids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const t = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
      ticks += t;
      if (FILTER_PROGRAMS.has(fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim())) filterTicks += t;
    } catch {
      /* exited */
    }
  }
  return { total: ticks / 100, filters: filterTicks / 100 };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * The programs that filter for a server rather than receive for it (/proc/<pid>/comm, 15 characters
 * at most): rspamd's processes, Redis, unbound, OpenDKIM, OpenDMARC, policyd-spf.
 */
const FILTER_PROGRAMS = new Set(["rspamd", "redis-server", "unbound", "opendkim", "opendmarc", "policyd-spf"]);

/** A namespace's PSS in MiB: all of it, and the part of it that is filters (FILTER_PROGRAMS). */
export function namespacePssSplit(ns: string): { total: number; filters: number } {
  let pids: string[] = [];
  try {
    pids = execFileSync("ip", ["netns", "pids", ns], { encoding: "utf8" }).split("\n").filter(Boolean);
  } catch {
    return { total: 0, filters: 0 };
  }
  let total = 0;
  let filters = 0;
  for (const pid of pids) {
    try {
      const kb = Number(/^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))?.[1] ?? 0);
      total += kb;
      // rspamd names its processes "rspamd: normal process" etc. (argv), comm stays "rspamd"
      if (FILTER_PROGRAMS.has(fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim())) filters += kb;
    } catch {
      /* exited between listing and reading */
    }
  }
  return { total: total / 1024, filters: filters / 1024 };
}

export interface PeakPss {
  total: number;
  /** the highest sample of the filters alone, and of the rest (the MTA) alone */
  filters: number;
  mta: number;
}

/**
 * Samples a namespace's PSS until stopped; resolves with the highest samples. Reading smaps_rollup
 * of a few hundred processes (Postfix under 100 sessions) takes CPU from the machine under test,
 * so the pause between samples is at least 100 ms and at least 9 times the last sample's cost:
 * the sampler takes at most a tenth of one CPU.
 */
export function samplePeakPss(ns: string): { stop(): Promise<PeakPss> } {
  const peak: PeakPss = { total: 0, filters: 0, mta: 0 };
  const sample = () => {
    const s = namespacePssSplit(ns);
    peak.total = Math.max(peak.total, s.total);
    peak.filters = Math.max(peak.filters, s.filters);
    peak.mta = Math.max(peak.mta, s.total - s.filters);
  };
  sample();
  let running = true;
  const loop = (async () => {
    while (running) {
      const t0 = performance.now();
      sample();
      await sleep(Math.max(100, 9 * (performance.now() - t0)));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      sample();
      return peak;
    },
  };
}

/** Run smtp-source from `load` against host:25, sampling the server's memory; returns seconds, peak MiB and CPU seconds. */
async function drive(
  load: NetHost,
  server: NetHost,
  shape: Load,
  message: SignedMessage,
): Promise<{ seconds: number; peak: PeakPss; cpuSeconds: number }> {
  const cpuBefore = namespaceCpuSeconds(server.ns);
  const sampler = samplePeakPss(server.ns);
  const started = process.hrtime.bigint();
  // a server that stops answering must not hold up the whole benchmark
  const r = await load.run(benchSmtpSource(shape, message, server.ipv4), { timeoutMs: LOAD_TIMEOUT_MS });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpuSeconds = namespaceCpuSeconds(server.ns) - cpuBefore;
  const peak = await sampler.stop();
  if (r.code !== 0) throw new Error(`smtp-source against ${server.name}: exit ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 2000)}`);
  return { seconds, peak, cpuSeconds };
}

function countFiles(dir: string): number {
  return fs.existsSync(dir) ? fs.readdirSync(dir).length : 0;
}

/** Spawn a server with stdout/stderr going straight to a file (not through this process). */
export function spawnLogged(host: NetHost, argv: string[], logFile: string, env?: NodeJS.ProcessEnv) {
  const quoted = argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(" ");
  return host.spawn(["bash", "-c", `exec ${quoted} >>'${logFile}' 2>&1`], { env: env ?? process.env });
}

/** Copies `file` into BENCH_KEEP_LOGS, if set, as `<prefix>-<name>` (or its own name). */
export function keepLog(file: string, prefix?: string): void {
  if (KEEP_LOGS && fs.existsSync(file)) {
    fs.mkdirSync(KEEP_LOGS, { recursive: true });
    fs.copyFileSync(file, path.join(KEEP_LOGS, prefix ? `${prefix}-${path.basename(file)}` : path.basename(file)));
  }
}

function withKeptLogs(host: NetHost, peer: RunningPeer): Running {
  return {
    stored: () => peer.stored(),
    verified: () => peer.verified(),
    async stop() {
      for (const file of peer.logFiles()) keepLog(file, host.name);
      await peer.stop();
    },
  };
}

export async function idleMb(host: NetHost): Promise<number> {
  await sleep(2000);
  return namespacePssMb(host.ns);
}

/**
 * A copy of this Node binary for the Node servers under test. PSS splits a file's pages among the
 * processes that map them: run from the file this benchmark itself runs on, maild or Haraka would
 * share Node's code pages with the benchmark process and be charged half of them. On a server the
 * daemon is the only process running Node.
 */
let privateNode: string | undefined;
export function privateNodeBinary(workDir: string): string {
  if (!privateNode) {
    privateNode = path.join(workDir, "node-under-test");
    fs.copyFileSync(process.execPath, privateNode);
    fs.chmodSync(privateNode, 0o755);
  }
  return privateNode;
}

/** What the benchmark does with a server once it listens on port 25. */
export interface Running {
  /** messages stored durably, counted after the load */
  stored(): number;
  /** messages whose SPF, DKIM and DMARC all passed; absent for a server that verifies nothing */
  verified?(): number;
  stop(): Promise<void>;
}

export interface BenchContext {
  net: LocalInternet;
  knot: KnotServer;
  /** where this run keeps its files */
  dir: string;
}

/** Messages in a Maildir whose Authentication-Results (by `authservId`) say SPF, DKIM and DMARC passed. */
export function countMaildirVerified(maildir: string, authservId: string): number {
  let n = 0;
  for (const sub of ["new", "cur"]) {
    const dir = path.join(maildir, sub);
    if (!fs.existsSync(dir)) continue;
    for (const name of fs.readdirSync(dir)) {
      const text = fs.readFileSync(path.join(dir, name), "latin1");
      const end = text.search(/\r?\n\r?\n/);
      // RFC 5322 2.2.3: a folded header continues on lines that start with white space
      const headers = (end < 0 ? text : text.slice(0, end)).replace(/\r?\n[ \t]+/g, " ").split(/\r?\n/);
      const results = headers.filter((h) => h.toLowerCase().startsWith(`authentication-results: ${authservId.toLowerCase()};`)).join(" ");
      if (/\bdkim=pass\b/.test(results) && /\bspf=pass\b/.test(results) && /\bdmarc=pass\b/.test(results)) n++;
    }
  }
  return n;
}

export interface RunningMaild extends Running {
  /** maild's own process (not rspamd's) */
  pid: number;
  maildir: string;
}

/**
 * maild with its spam filter in `host`, configured for the benchmark's load; `nodeFlags` go to
 * Node before the bundle (default BENCH_MAILD_NODE_FLAGS), `env` to maild's environment.
 */
export async function startMaild(
  host: NetHost,
  ctx: BenchContext,
  opts: { nodeFlags?: string[]; env?: NodeJS.ProcessEnv } = {},
): Promise<RunningMaild> {
  const main = path.join(ROOT, "server-bootstrap/maild/main.ts");
  if (!fs.existsSync(main)) throw new Error(`${main} does not exist`);
  // rspamd, Redis and unbound in maild's host, as on the box; unbound forwards to knot.
  const spam = await startSpamFilter(ctx.net, host, { upstreamDns: ctx.knot.host.ipv4 });
  // The box runs a bundle (one JS file) on plain node; so does the benchmark.
  const bundle = await bundleMaild();
  const tls = await makeTestTls(path.join(ctx.dir, "tls"), [`mail.${DOMAIN}`], "maild");
  const dataDir = path.join(ctx.dir, "data");
  const hostname = `mail.${DOMAIN}`;
  const config = {
    hostname,
    domains: [{ name: DOMAIN, dkim: [] }],
    users: [{ address: RECIPIENT, passwordHash: argon2idHash("bench") }],
    aliases: [],
    tls: { certPath: tls.certPath, keyPath: tls.keyPath },
    dataDir,
    listen: { smtp: [{ host: host.ipv4, port: 25 }], http: [{ host: host.ipv4, port: 80 }], https: [{ host: host.ipv4, port: 443 }] },
    dnsServers: [ctx.knot.host.ipv4],
    limits: { maxConnectionsPerIp: 100000, maxConnections: 100000, maxMessagesPerIpPerMinute: 10000000 },
  };
  const configPath = path.join(ctx.dir, "maild.json");
  fs.writeFileSync(configPath, JSON.stringify(config, null, 2));
  const logFile = path.join(ctx.dir, `maild-${host.name}.log`);
  const child = await startListening(
    host,
    "maild",
    [privateNodeBinary(ctx.net.workDir), ...(opts.nodeFlags ?? MAILD_NODE_FLAGS), bundle, "--config", configPath],
    logFile,
    opts.env,
  );
  const maildir = path.join(dataDir, "mail", DOMAIN, "bench", "Maildir");
  return {
    pid: child.pid!,
    maildir,
    stored: () => countFiles(path.join(maildir, "new")) + countFiles(path.join(maildir, "cur")),
    verified: () => countMaildirVerified(maildir, hostname),
    async stop() {
      await stopWithin(host, async () => {
        await LocalInternet.stopProcess(child, 10_000);
        keepLog(logFile);
        await spam.stop();
      });
    },
  };
}

/** The zones every benchmark serves: the load generator's domain and host (FCrDNS), and ours. */
export function benchZones(
  load: NetHost,
  domain: string,
  sender: { dkimRecord?: string; dmarcPolicy?: "none" | "reject" } = {},
): { origin: string; lines: string[] }[] {
  const [a, b, c, d] = load.ipv4.split(".");
  return [
    {
      origin: "example.net.",
      lines: [
        `example.net. 300 IN TXT "v=spf1 ip4:${load.ipv4} -all"`,
        `_dmarc.example.net. 300 IN TXT "v=DMARC1; p=${sender.dmarcPolicy ?? "none"}"`,
        `load.example.net. 300 IN A ${load.ipv4}`,
        ...(sender.dkimRecord ? [sender.dkimRecord] : []),
      ],
    },
    { origin: `${c}.${b}.${a}.in-addr.arpa.`, lines: [`${d}.${c}.${b}.${a}.in-addr.arpa. 300 IN PTR load.example.net.`] },
    { origin: `${domain}.`, lines: [] },
  ];
}

/**
 * smtp-source(1) arguments: `messages` over `sessions`, from `sender` to `recipient` at `target`;
 * each message is `messageFile` as it is (`-F`) or smtp-source's own of `size` bytes (`-l`).
 */
export function smtpSource(o: {
  reuse: boolean;
  sessions: number;
  messages: number;
  size: number;
  messageFile?: string;
  sender: string;
  recipient: string;
  target: string;
}): string[] {
  const body = o.messageFile ? ["-F", o.messageFile] : ["-l", String(o.size)];
  const args = ["-s", String(o.sessions), "-m", String(o.messages), ...body, "-M", "load.example.net"];
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

async function startHaraka(host: NetHost, ctx: BenchContext): Promise<Running> {
  const bin = ensureHaraka();
  const dir = path.join(ctx.dir, "haraka");
  // Haraka's own outbound queue lives in <dir>/queue; ours is beside it.
  const queueDir = path.join(dir, "bench-queue");
  const cfg = initHaraka(bin, dir, host, DOMAIN, "rcpt_to.in_host_list\nbench_fsync\n", "daemon-haraka-queue.js", "bench_fsync");
  cfg("host_list", `${DOMAIN}\n`);
  const logFile = path.join(dir, `haraka-${host.name}.log`);
  const child = await startListening(host, "haraka", [privateNodeBinary(ctx.net.workDir), bin, "-c", dir], logFile, {
    ...process.env,
    HARAKA_BENCH_QUEUE: queueDir,
  });
  return {
    stored: () => countFiles(path.join(queueDir, "new")),
    async stop() {
      await stopWithin(host, async () => {
        await LocalInternet.stopProcess(child, 10_000);
        keepLog(logFile);
      });
    },
  };
}

async function startPlainPostfix(host: NetHost, ctx: BenchContext): Promise<Running> {
  const peer = await startPostfix(ctx.net, host, {
    myhostname: `postfix.${DOMAIN}`,
    mydomain: DOMAIN,
    extraMain: benchPostfixMain(DOMAIN),
  });
  return {
    stored: () => (peer.log().match(/ status=sent \(/g) ?? []).length,
    async stop() {
      await stopWithin(host, () => peer.stop());
    },
  };
}

interface BenchServer {
  /** BENCH_SERVERS id, also the stem of its host names */
  id: string;
  name: string;
  start(host: NetHost, ctx: BenchContext): Promise<Running>;
}

const SERVERS: BenchServer[] = [
  { id: "postfix", name: "Postfix (no checks)", start: startPlainPostfix },
  {
    id: "postfix-rspamd",
    name: "Postfix + rspamd milter",
    start: async (host, ctx) =>
      withKeptLogs(host, await startPostfixRspamd(ctx.net, host, { domain: DOMAIN, dnsServer: ctx.knot.host.ipv4 })),
  },
  {
    id: "postfix-milters",
    name: "Postfix + OpenDKIM + OpenDMARC + policyd-spf",
    start: async (host, ctx) =>
      withKeptLogs(host, await startPostfixMilters(ctx.net, host, { domain: DOMAIN, dnsServer: ctx.knot.host.ipv4 })),
  },
  { id: "maild", name: "maild + rspamd", start: startMaild },
  { id: "haraka", name: "Haraka (no checks)", start: startHaraka },
];

/**
 * What systemd as PID 1 sets on a server and a namespace lacks: net.unix.max_dgram_qlen 512
 * (systemd src/core/main.c, bump_unix_max_dgram_qlen; the kernel's default is 10). Postfix's
 * processes log through one datagram socket to postlogd (maillog_file, as the harness runs it).
 * With 10 datagrams queued at most, Postfix stopped for good in two 100-session runs (plain, and
 * with rspamd): every process, master included, waited on the full socket, and postlogd's
 * watchdog killed it later; postlogd writes to master's status pipe after every request
 * (dgram_server.c, master_notify), so a master stuck sending can stop postlogd too.
 */
async function asOnAServer(host: NetHost): Promise<void> {
  const r = await host.run(["sysctl", "-q", "-w", "net.unix.max_dgram_qlen=512"]);
  if (r.code !== 0) throw new Error(`sysctl net.unix.max_dgram_qlen in ${host.name}: ${r.stderr}`);
}

/**
 * The local internet every run of this benchmark shares: knot serving the zones (the sender's SPF,
 * DKIM key and DMARC policy, the load host's FCrDNS), the load host, and the signed message.
 */
export async function benchWorld(net: LocalInternet): Promise<{ load: NetHost; knot: KnotServer; message: SignedMessage }> {
  const dns = await net.addHost("dns");
  const load = await net.addHost("load");
  const message = makeSignedMessage({
    dir: path.join(net.workDir, "message"),
    domain: SENDER_DOMAIN,
    selector: "bench",
    from: SENDER,
    to: RECIPIENT,
    bodyBytes: SIZE,
  });
  const knot = await startKnot(net, dns, benchZones(load, DOMAIN, { dkimRecord: message.dkimRecord, dmarcPolicy: "reject" }));
  await net.setResolver(dns.ipv4);
  return { load, knot, message };
}

/** `smtp-source` of the benchmark message from `load` to `target`:25 in the given shape. */
export function benchSmtpSource(shape: Load, message: SignedMessage, target: string, messages = MESSAGES): string[] {
  return smtpSource({
    reuse: shape.reuse,
    sessions: shape.sessions,
    messages,
    size: SIZE,
    messageFile: message.file,
    sender: SENDER,
    recipient: RECIPIENT,
    target,
  });
}

/** Postfix's queue is empty once every accepted message went to discard: wait for it, up to a minute. */
async function settle(running: Running, expected: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (running.stored() < expected && Date.now() < deadline) await sleep(200);
}

async function benchOne(server: BenchServer, shape: Load, host: NetHost, load: NetHost, ctx: BenchContext, message: SignedMessage) {
  const running = await server.start(host, ctx);
  try {
    await sleep(IDLE_AFTER_MS);
    const idle = namespacePssSplit(host.ns);
    let measured;
    try {
      measured = await drive(load, host, shape, message);
    } catch (e) {
      // recorded as this run's note (which fails the benchmark) and the other runs go on
      return {
        name: server.name,
        load: shape,
        seconds: NaN,
        stored: running.stored(),
        idleMb: idle.total,
        peakMb: NaN,
        idleFiltersMb: idle.filters,
        peakFiltersMb: NaN,
        peakMtaMb: NaN,
        cpuSeconds: NaN,
        note: (e as Error).message,
      };
    }
    const { seconds, peak, cpuSeconds } = measured;
    await settle(running, MESSAGES);
    const result: Result = {
      name: server.name,
      load: shape,
      seconds,
      stored: running.stored(),
      ...(running.verified ? { verified: running.verified() } : {}),
      idleMb: idle.total,
      peakMb: peak.total,
      idleFiltersMb: idle.filters,
      peakFiltersMb: peak.filters,
      peakMtaMb: peak.mta,
      cpuSeconds,
    };
    const problems = [
      ...(result.stored !== MESSAGES ? [`stored ${result.stored} of ${MESSAGES} messages`] : []),
      ...(result.verified !== undefined && result.verified !== result.stored
        ? [`SPF, DKIM and DMARC all passed for ${result.verified} of the ${result.stored} messages stored`]
        : []),
    ];
    if (problems.length > 0) result.note = problems.join("; ");
    return result;
  } finally {
    await running.stop();
  }
}

function loadLabel(shape: Load): string {
  return `${shape.reuse ? "smtp-source -d" : "smtp-source"} -s ${shape.sessions} -m ${MESSAGES}`;
}

/** One table per load: each server's figures, and maild's divided by each server's. */
function table(results: Result[]): string {
  const rate = (r: Result) => r.stored / r.seconds;
  const cpuMs = (r: Result) => (r.cpuSeconds * 1000) / r.stored;
  const f = (v: number, digits = 0) => (Number.isFinite(v) ? v.toFixed(digits) : "n/a");
  const out: string[] = [];
  for (const shape of LOADS) {
    const rows = results.filter((r) => r.load === shape);
    if (rows.length === 0) continue;
    const maild = rows.find((r) => r.name.startsWith("maild"));
    const ratio = (v: (r: Result) => number, r: Result) => {
      if (!maild || r === maild) return "-";
      const q = v(maild) / v(r);
      return Number.isFinite(q) ? `${q.toFixed(2)}x` : "n/a";
    };
    out.push(
      `${loadLabel(shape)} (${shape.reuse ? `${shape.sessions} connections, each reused` : `a new connection per message, ${shape.sessions} at a time`}):`,
      "",
      "| server | SPF+DKIM+DMARC passed | msgs/s | maild ÷ this | CPU ms/msg | maild ÷ this | idle PSS MiB | maild ÷ this | peak PSS MiB | maild ÷ this |",
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    );
    for (const r of rows) {
      out.push(
        `| ${r.name} | ${r.verified === undefined ? "not checked" : `${r.verified}/${r.stored}`} | ${f(rate(r))} | ${ratio(rate, r)} | ${f(cpuMs(r), 2)} | ${ratio(cpuMs, r)} | ${f(r.idleMb, 1)} | ${ratio((x) => x.idleMb, r)} | ${f(r.peakMb, 1)} | ${ratio((x) => x.peakMb, r)} |`,
      );
    }
    out.push(
      "",
      "The same memory split: the MTA's own processes, and its filters (rspamd, Redis, unbound, OpenDKIM, OpenDMARC, policyd-spf); peaks are each part's own highest sample:",
      "",
      "| server | MTA idle PSS MiB | MTA peak PSS MiB | filters idle PSS MiB | filters peak PSS MiB |",
      "|---|---:|---:|---:|---:|",
    );
    for (const r of rows) {
      out.push(
        `| ${r.name} | ${f(r.idleMb - r.idleFiltersMb, 1)} | ${f(r.peakMtaMb, 1)} | ${f(r.idleFiltersMb, 1)} | ${f(r.peakFiltersMb, 1)} |`,
      );
    }
    out.push("");
  }
  return out.join("\n");
}

async function main(): Promise<void> {
  requirePrograms(["/usr/sbin/smtp-source", "/usr/sbin/postfix", "/usr/sbin/knotd", "/usr/bin/dkimsign"]);
  const unknown = SERVER_IDS.filter((id) => !SERVERS.some((s) => s.id === id));
  if (unknown.length > 0) throw new Error(`BENCH_SERVERS: unknown ${unknown.join(", ")}; known: ${SERVERS.map((s) => s.id).join(", ")}`);
  const servers = SERVERS.filter((s) => SERVER_IDS.includes(s.id));
  const net = await LocalInternet.create();
  const results: Result[] = [];
  try {
    const { load, knot, message } = await benchWorld(net);
    // Servers take turns within each load, so that whatever else this machine does at the time
    // weighs on all of them alike.
    for (const [i, shape] of LOADS.entries()) {
      for (const server of servers) {
        progress(`${server.name}: ${loadLabel(shape)}, ${message.bytes} bytes each ...`);
        const host = await net.addHost(`${server.id}-${i}`);
        await asOnAServer(host);
        const dir = path.join(net.workDir, host.name);
        fs.mkdirSync(dir, { recursive: true });
        const r = await benchOne(server, shape, host, load, { net, knot, dir }, message);
        progress(
          `${server.name}: ${r.seconds.toFixed(2)} s, ${(r.stored / r.seconds).toFixed(0)} msgs/s, CPU ${((r.cpuSeconds * 1000) / r.stored).toFixed(2)} ms/msg, idle ${r.idleMb.toFixed(1)} MiB, peak ${r.peakMb.toFixed(1)} MiB${r.note ? ` (${r.note})` : ""}`,
        );
        results.push(r);
      }
    }
    await knot.stop();
  } finally {
    await net.destroy();
  }
  await report(
    `${MESSAGES} messages of ${SIZE} bytes of body each (DKIM-signed, SPF and DMARC p=reject passing); $CPUS CPUs; Node ${process.version}; memory = PSS summed over the server's processes (its filters, Redis and resolver included)`,
    table(results),
    results.map((r) => ({ name: `${r.name}, ${loadLabel(r.load)}`, ...(r.note ? { note: r.note } : {}) })),
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
